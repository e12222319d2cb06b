"""PostgreSQL prepares the worker's hot statements once per connection (PREPARED_STATEMENTS)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inngest_django.enums import RunStatus
from inngest_django.functions import FINISHED_EVENT
from inngest_django.worker import Worker
from tests.helpers import runs_of, send_steps

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

# How each statement starts, as pg_prepared_statements shows it.
STATEMENTS = {
    "finish": 'WITH changed AS (UPDATE "inngest_django_functionrun"',
    "held memo": 'INSERT INTO "inngest_django_steprun"',
    "claim": "WITH picked AS (SELECT id, available_at",
    "dispatch": 'WITH stamped AS (UPDATE "inngest_django_event"',
}


def executions() -> dict[str, int]:
    """Return how often this connection ran each prepared statement (0: not prepared)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        found = cursor.fetchall()
    return {
        name: sum(count for statement, count in found if statement.startswith(start))
        for name, start in STATEMENTS.items()
    }


def drain_three_step_runs(count: int) -> None:
    send_steps(count=count, steps=3)
    worker = Worker(threads=0, worker_id="prepared")
    while worker.run_once():
        pass
    assert [run.status for run in runs_of("testapp-record-steps")] == [RunStatus.COMPLETED] * count


def test_the_workers_hot_statements_are_prepared_and_reused(settings):
    settings.INNGEST_DJANGO = {"PREPARED_STATEMENTS": True}
    before = executions()
    drain_three_step_runs(4)
    ran = {name: count - before[name] for name, count in executions().items()}
    # Per run: one finish, and the memos of its first two steps written by the next step
    # (the last one's goes in with the finish); at least one claim and one dispatch.
    assert ran["finish"] == 4
    assert ran["held memo"] == 8
    assert ran["claim"] >= 1
    assert ran["dispatch"] >= 1


def test_prepared_statements_off_prepares_nothing(settings):
    settings.INNGEST_DJANGO = {"PREPARED_STATEMENTS": False}
    before = executions()
    drain_three_step_runs(2)
    assert executions() == before


def test_a_prepared_statement_is_logged_with_its_values_in_place(settings):
    settings.INNGEST_DJANGO = {"PREPARED_STATEMENTS": True}
    send_steps(steps=1)
    with CaptureQueriesContext(connection) as captured:
        Worker(threads=0, worker_id="logged").run_once()
    (finish,) = [q["sql"] for q in captured if q["sql"].startswith(STATEMENTS["finish"])]
    (run,) = runs_of("testapp-record-steps")
    assert FINISHED_EVENT in finish and run.pk in finish
    assert "$1" not in finish
