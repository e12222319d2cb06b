"""Concurrency across worker processes: the limit holds however many workers claim."""

from __future__ import annotations

import pytest
from django.db import connection

import inngest_django as inngest
from inngest_django.models import FunctionRun
from tests.helpers import most_at_once
from tests.testapp.inngest_functions import LIMITED_ENV

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LIMITED = "testapp-limited"


def test_limit_2_holds_across_two_workers_with_four_threads(workers):
    for _ in range(2):
        workers.start("--threads", "2", **{LIMITED_ENV: "1"})
    for index in range(2):
        workers.wait_for_log(index, "Worker started")
    inngest.send([{"name": "testapp/limited", "data": {"pause_s": 0.3}} for _ in range(10)])
    runs = FunctionRun.objects.filter(function_id=LIMITED)
    workers.wait_for(
        lambda: runs.filter(status="COMPLETED").count() == 10, what="10 runs", timeout=60
    )
    entries = workers.journal()
    starts = {e["run"]: e["t"] for e in entries if e["phase"] == "start"}
    ends = {e["run"]: e["t"] for e in entries if e["phase"] == "end"}
    assert len(starts) == len(ends) == 10
    intervals = [(starts[run], ends[run]) for run in starts]
    peak = most_at_once(intervals)
    assert peak <= 2
    if connection.vendor == "postgresql":
        # SQLite runs one step transaction at a time anyway; PostgreSQL fills both slots.
        assert peak == 2
