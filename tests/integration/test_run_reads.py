"""load_claimed: the claimed runs and their trigger events, read as select_related would."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.db.models import Model
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inngest_django.engine import load_claimed
from inngest_django.events import queued_run
from inngest_django.ids import new_id
from inngest_django.models import Event, FunctionRun

pytestmark = pytest.mark.django_db(transaction=True)


def values(row: Model) -> dict[str, object]:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


def stored_runs() -> list[FunctionRun]:
    now = timezone.now()
    data = {"n": 1, "nested": [1, {"a": None}]}
    event = Event.objects.create(id=new_id(), name="test/reads", data=data, ts=7)
    other = Event.objects.create(id=new_id(), name="test/other", data={}, ts=8)
    finished = queued_run("reads", event, now=now)
    finished.output = {"total": 3}
    failed = queued_run("reads", other, now=now)
    failed.error = {"name": "Boom", "message": "sealed too"}
    FunctionRun.objects.bulk_create([finished, failed])
    return [finished, failed]


@pytest.mark.parametrize("sealed", [False, True])
def test_runs_and_events_read_as_select_related_reads_them(settings, sealed):
    if sealed:
        settings.INNGEST_DJANGO = {"ENCRYPTION_KEYS": (Fernet.generate_key().decode(),)}
    ids = [run.pk for run in stored_runs()] + ["no-such-run"]
    expected = FunctionRun.objects.select_related("event").in_bulk(ids)
    with CaptureQueriesContext(connection) as queries:
        loaded = load_claimed(ids)
    # One statement; the event came with its run (reading run.event queries nothing more).
    assert len(queries) == 1
    assert sorted(loaded) == sorted(expected)
    for run_id, run in loaded.items():
        assert values(run) == values(expected[run_id])
        assert run._state.adding is False and run._state.db == "default"
        assert values(run.event) == values(expected[run_id].event)
    assert len(queries) == 1
    finished = loaded[ids[0]]
    assert finished.event.data == {"n": 1, "nested": [1, {"a": None}]}
    assert finished.output == {"total": 3}
    assert loaded[ids[1]].error == {"name": "Boom", "message": "sealed too"}


def test_no_ids_read_nothing():
    with CaptureQueriesContext(connection) as queries:
        assert load_claimed([]) == {}
    assert len(queries) == 0


def test_reading_compiles_no_orm_query(monkeypatch):
    ids = [run.pk for run in stored_runs()]
    compiled = []
    original = SQLCompiler.as_sql

    def spy(self, *args, **kwargs):
        compiled.append(self.query.model)
        return original(self, *args, **kwargs)

    # Compiling the QuerySet on every claim is what the raw read saves.
    monkeypatch.setattr(SQLCompiler, "as_sql", spy)
    assert len(load_claimed(ids)) == 2
    assert compiled == []


def test_on_postgresql_reads_of_any_size_share_one_prepared_statement():
    if connection.vendor != "postgresql":
        pytest.skip("statements are prepared on PostgreSQL only")
    ids = [run.pk for run in stored_runs()]
    for size in (1, 2, 3):
        assert len(load_claimed((ids * 2)[:size])) == min(size, 2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%e.id = c.event_id WHERE%"],
        )
        prepared = [row[0] for row in cursor.fetchall()]
    # psycopg keeps 100 prepared statements a connection: one per claim size would crowd the
    # hot path's out.
    assert len(prepared) == 1, prepared
