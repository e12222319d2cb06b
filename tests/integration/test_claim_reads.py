"""A worker reads the runs it claimed in one query, not one query per run."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun
from inngest_django.worker import Worker
from tests.helpers import counted_commits, send_steps

pytestmark = pytest.mark.django_db(transaction=True)

# A run's columns as a read selects them: the ORM's qualified name, or run_reads' alias `c`.
RUN_COLUMNS = ('"inngest_django_functionrun"."function_id"', 'c."function_id"')
# PostgreSQL's claim reads what it takes in its own statement: the claim's UPDATE in a WITH.
CLAIM_AND_READ = "claimed AS (UPDATE \"inngest_django_functionrun\" SET status = 'RUNNING'"


def claim_of_four(settings) -> list[str]:
    """Return the statements of a worker round that claims and executes four due runs."""
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "PREFETCH_RUNS": 3}
    send_steps(4, steps=1)
    dispatch_pending()
    worker = Worker(threads=0, worker_id="reads")
    with CaptureQueriesContext(connection) as captured:
        assert worker.run_once() == 4
    statuses = set(FunctionRun.objects.values_list("status", flat=True))
    assert statuses == {RunStatus.COMPLETED}
    return [query["sql"] for query in captured.captured_queries]


def test_a_claim_of_four_runs_reads_them_in_one_query(settings):
    statements = claim_of_four(settings)
    reads = [
        sql
        for sql in statements
        if sql.startswith("SELECT") and any(column in sql for column in RUN_COLUMNS)
    ]
    if connection.vendor == "postgresql":
        assert not reads
        assert sum(CLAIM_AND_READ in sql for sql in statements) == 1
    else:
        assert len(reads) == 1


def test_on_postgresql_the_claim_is_one_statement_without_a_look_or_a_transaction(settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite claims in a transaction after a look (its one writer)")
    # Each pass commits alone, so the commits counted are the passes' and the claim's.
    settings.INNGEST_DJANGO = {
        **settings.INNGEST_DJANGO,
        "PREFETCH_RUNS": 3,
        "GROUP_COMMIT_SECONDS": 0,
    }
    send_steps(4, steps=1)
    dispatch_pending()
    worker = Worker(threads=0, worker_id="one-statement")
    run_table = '"inngest_django_functionrun"'
    with CaptureQueriesContext(connection) as captured, counted_commits() as commits:
        assert worker._claim_and_execute() == 4
    statements = [query["sql"] for query in captured.captured_queries]
    # The claim comes first (no look) and reads the runs and their events: no run or event
    # is read after it.
    assert CLAIM_AND_READ in statements[0]
    assert 'LEFT JOIN "inngest_django_event"' in statements[0]
    reads = [sql for sql in statements[1:] if sql.startswith("SELECT")]
    assert not [sql for sql in reads if f"FROM {run_table}" in sql or "inngest_django_event" in sql]
    # The claim committed by itself, with no COMMIT: the four are the passes'.
    assert len(commits) == 4
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == 4
