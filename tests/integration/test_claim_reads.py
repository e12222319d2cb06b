"""A worker reads the runs it claimed in one query, not one query per run."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun
from inngest_django.worker import Worker
from tests.helpers import send_steps

pytestmark = pytest.mark.django_db(transaction=True)

RUN_COLUMNS = '"inngest_django_functionrun"."function_id"'


def test_a_claim_of_four_runs_reads_them_in_one_query(settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "PREFETCH_RUNS": 3}
    send_steps(4, steps=1)
    dispatch_pending()
    worker = Worker(threads=0, worker_id="reads")
    with CaptureQueriesContext(connection) as captured:
        assert worker.run_once() == 4
    reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    assert sum(RUN_COLUMNS in sql for sql in reads) == 1
    statuses = set(FunctionRun.objects.values_list("status", flat=True))
    assert statuses == {RunStatus.COMPLETED}
