"""rows.insert_all: one INSERT per batch, blanks converted once per column, sealed ones sealed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inngest_django.events import queued_run, send
from inngest_django.models import Event, FunctionRun, rows
from inngest_django.models.rows import _insert_params

pytestmark = pytest.mark.django_db(transaction=True)


def stored_outputs() -> list[str]:
    """Return the runs' output column as the database holds it, oldest run first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT output FROM inngest_django_functionrun ORDER BY id")
        return [str(row[0]) for row in cursor.fetchall()]


def run_with_output(event: Event, output: Any) -> FunctionRun:
    run = queued_run("insert-rows", event, now=timezone.now())
    run.output = output
    return run


def test_blank_columns_store_as_the_orm_would(settings):
    event = Event.objects.create(name="test/rows", data={}, ts=1)
    run = queued_run("insert-rows", event, now=timezone.now())
    first, _ = _insert_params(run, {})
    again, _ = _insert_params(run, {})
    by_orm = [
        field.get_db_prep_save(getattr(run, field.attname), connection)
        for field in FunctionRun._meta.concrete_fields
    ]
    # Equal to the ORM's conversion, created_at (stamped afresh by each call) aside.
    created = [f.name for f in FunctionRun._meta.concrete_fields].index("created_at")
    for values in (first, again):
        assert values[:created] + values[created + 1 :] == by_orm[:created] + by_orm[created + 1 :]
    assert rows.insert_all([run])
    assert FunctionRun.objects.get(pk=run.pk).concurrency_key == ""


@pytest.mark.parametrize("blank", [0, ""])
def test_a_sealed_blank_is_sealed_once_encryption_is_on(settings, blank):
    # A blank converted while encryption was off must not be reused once it is on.
    event = Event.objects.create(name="test/rows", data={}, ts=1)
    assert rows.insert_all([run_with_output(event, blank)])
    settings.INNGEST_DJANGO = {"ENCRYPTION_KEYS": (Fernet.generate_key().decode(),)}
    assert rows.insert_all([run_with_output(event, blank), run_with_output(event, blank)])
    clear, *sealed = stored_outputs()
    assert "$sealed" not in clear
    assert all("$sealed" in value for value in sealed)
    assert len(set(sealed)) == 2
    assert [run.output for run in FunctionRun.objects.order_by("id")] == [blank] * 3


def inserts_of(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]


def test_a_batch_of_100_runs_is_one_insert():
    event = Event.objects.create(name="test/rows", data={}, ts=1)
    runs = [queued_run("insert-rows", event, now=timezone.now()) for _ in range(100)]
    with CaptureQueriesContext(connection) as captured:
        assert rows.insert_all(runs) is True
    # SQLite too: Django's 999-parameter assumption made it four INSERTs through bulk_create.
    assert len(captured.captured_queries) == 1
    assert len(inserts_of(captured)) == 1
    assert FunctionRun.objects.count() == 100


def test_a_send_of_500_events_is_one_insert():
    with CaptureQueriesContext(connection) as captured:
        ids = send([{"name": "test/rows", "data": {"n": n}} for n in range(500)])
    assert len(captured.captured_queries) == 1
    assert Event.objects.filter(pk__in=ids).count() == 500
    assert sorted(e.data["n"] for e in Event.objects.all()) == list(range(500))


def test_a_batch_past_the_parameter_limit_is_left_to_bulk_create():
    event = Event.objects.create(name="test/rows", data={}, ts=1)
    fields = len(FunctionRun._meta.concrete_fields)
    runs = [
        queued_run("insert-rows", event, now=timezone.now())
        for _ in range(rows.MAX_INSERT_PARAMS // fields + 1)
    ]
    assert rows.insert_all(runs) is False
    assert FunctionRun.objects.count() == 0


def instance_state(row: Any) -> dict[str, Any]:
    """Return what an instance holds: its field values, its db and adding flags, its cache."""
    values = {name: value for name, value in vars(row).items() if name != "_state"}
    return {**values, "_db": row._state.db, "_adding": row._state.adding, **row._state.fields_cache}


@pytest.mark.parametrize(
    "model, values",
    [
        (FunctionRun, {"id": "r1", "function_id": "f", "status": "queued", "attempt": 2}),
        (Event, {"id": "e1", "name": "test/rows", "data": {"a": 1}, "external_id": "x", "ts": 5}),
    ],
)
def test_new_row_builds_what_the_model_constructor_builds(model, values):
    now = timezone.now()
    event = Event.objects.create(name="test/rows", data={}, ts=1)
    if model is FunctionRun:
        values = {**values, "event": event, "available_at": now}
    built, constructed = rows.new_row(model, **values), model(**values)
    assert instance_state(built) == instance_state(constructed)
    assert set(vars(built)) == set(vars(constructed))


def test_new_row_calls_a_callable_default_for_each_row():
    # Event.data defaults to dict: one shared dict would leak one row's data into the next.
    first, second = rows.new_row(Event, name="test/rows"), rows.new_row(Event, name="test/rows")
    first.data["key"] = 1
    assert second.data == {}


def test_new_row_leaves_a_model_with_init_receivers_to_its_constructor():
    from django.db.models.signals import post_init

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Event)
    try:
        row = rows.new_row(Event, name="test/rows", data={}, ts=1)
    finally:
        post_init.disconnect(receiver, sender=Event)
    assert seen == [row]


def test_new_row_refuses_a_name_that_is_not_a_field():
    with pytest.raises(TypeError):
        rows.new_row(Event, name="test/rows", nonsense=1)


def test_on_sqlite_a_hot_statement_is_rewritten_once_and_still_runs_through_the_wrappers(
    monkeypatch,
):
    if connection.vendor != "sqlite":
        pytest.skip("placeholders are rewritten on SQLite only; PostgreSQL takes them as sent")
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    rewritten = []
    convert = SQLiteCursorWrapper.convert_query

    def counted(self, query, **kwargs):
        rewritten.append(query)
        return convert(self, query, **kwargs)

    monkeypatch.setattr(SQLiteCursorWrapper, "convert_query", counted)
    event = Event.objects.create(name="test/rows", data={}, ts=1)
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper), CaptureQueriesContext(connection) as logged:
        for _ in range(3):
            rows.insert(queued_run("insert-rows", event, now=timezone.now()))
    # Once per process (an earlier test may have rewritten it already), not once per call.
    assert len([sql for sql in rewritten if "inngest_django_functionrun" in sql]) <= 1
    assert len([sql for sql in seen if "inngest_django_functionrun" in sql]) == 3
    assert len(logged.captured_queries) == 3
    assert FunctionRun.objects.count() == 3


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC),
        datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC),
        datetime(2026, 12, 8, 1, 2, 3, 5, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 12, 8, 1, 2, 3, 5, tzinfo=ZoneInfo("UTC")),
    ],
)
def test_adapt_datetime_gives_what_the_backends_adapter_gives(value):
    assert rows.adapt_datetime(value) == connection.ops.adapt_datetimefield_value(value)


def test_row_reader_looks_its_converters_up_once_per_connection(monkeypatch):
    from django.db import connections

    db = connections["default"]
    looked_up = []
    get_converters = type(db.ops).get_db_converters

    def counted(self, expression):
        looked_up.append(expression)
        return get_converters(self, expression)

    monkeypatch.setattr(type(db.ops), "get_db_converters", counted)
    event = Event.objects.create(name="test/rows", data={"a": 1}, ts=7)
    readers = [rows.row_reader(Event, connection) for _ in range(3)]
    # Once per column at most (an earlier test may have cached them): not once per reader.
    assert len(looked_up) <= len(Event._meta.concrete_fields)
    with connection.cursor() as cursor:
        columns = ", ".join(f.column for f in Event._meta.concrete_fields)
        cursor.execute(f"SELECT {columns} FROM inngest_django_event WHERE id = %s", [event.pk])
        values = cursor.fetchone()
    read = [reader(values) for reader in readers]
    assert all((r.pk, r.data, r.ts) == (event.pk, {"a": 1}, 7) for r in read)


def test_a_statement_cursor_refuses_to_open_inside_an_event_loop_as_djangos_does():
    import asyncio

    from django.core.exceptions import SynchronousOnlyOperation

    from inngest_django.models.cursors import statement_cursor

    async def open_one() -> None:
        statement_cursor()

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(open_one())


@pytest.mark.parametrize("opener", ["statement_cursor", "prepared_cursor"])
def test_a_hot_cursor_resolves_the_connection_proxy_once(monkeypatch, opener):
    from django.utils.connection import ConnectionProxy

    from inngest_django.models import cursors

    connection.ensure_connection()
    reads = []
    original = ConnectionProxy.__getattr__

    def counted(self, item):
        reads.append(item)
        return original(self, item)

    # Every attribute read through Django's `connection` proxy looks the thread's connection
    # up again; opening a cursor read seven of them.
    monkeypatch.setattr(ConnectionProxy, "__getattr__", counted)
    with getattr(cursors, opener)() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1
    assert reads == []


def test_row_reader_keeps_no_finished_connection_alive():
    import gc
    import weakref

    from django.db import connections

    # A thread's own connection, as a worker's pool thread has: gone with the thread, its
    # session must close with it, not stay open in a cache.
    db = connections.create_connection("default")
    rows.row_reader(Event, db)
    gone = weakref.ref(db)
    del db
    gc.collect()
    assert gone() is None
