"""Runs read with their trigger events in one raw statement, as the worker executes them.

`model` is the run model; its `event` foreign key names the event model (the runs module
imports the queue, which reads through here, so neither is imported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connection, models

from .cursors import prepared_cursor
from .rows import row_reader


def runs_with_events(model: type[models.Model], run_ids: Sequence[str]) -> dict[str, Any]:
    """Return the runs `run_ids` names, trigger events loaded, by id.

    What `select_related("event").in_bulk(run_ids)` returns: the ORM compiles that query on
    every call and builds each row through `from_db`, which together cost more than the read.
    """
    if not run_ids:
        return {}
    if connection.vendor == "postgresql":
        # One text for any number of ids: each text is a prepared statement per connection,
        # and a claim's sizes would crowd the hot ones out of psycopg's cache of 100.
        where, params = "c.id = ANY(%s)", [list(run_ids)]
    else:
        where, params = f"c.id IN ({', '.join(['%s'] * len(run_ids))})", list(run_ids)
    sql = (
        f"SELECT {with_event_columns(model)} "
        f"FROM {connection.ops.quote_name(model._meta.db_table)} c "
        f"LEFT JOIN {events_table(model)} e ON e.id = c.event_id WHERE {where}"
    )
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return read_with_events(model, cursor.fetchall())


def events_table(model: type[models.Model]) -> str:
    """Return the quoted table of the runs' events, joined as `e`."""
    return connection.ops.quote_name(_event_model(model)._meta.db_table)


def with_event_columns(model: type[models.Model]) -> str:
    """Return the SELECT list of a run (`c`) and its trigger event (`e`), in field order."""
    # Every claim asks: built once per model and backend.
    return _with_event_columns(model, connection.vendor)


@cache
def _with_event_columns(model: type[models.Model], vendor: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(
        [f"c.{quote(field.column)}" for field in model._meta.concrete_fields]
        + [f"e.{quote(field.column)}" for field in _event_model(model)._meta.concrete_fields]
    )


def read_with_events(model: type[models.Model], found: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Return the runs of rows `with_event_columns` selected, in row order, by id."""
    split = len(model._meta.concrete_fields)
    read_run = row_reader(model, connection)
    read_event = row_reader(_event_model(model), connection)
    loaded = {}
    for values in found:
        run = read_run(values[:split])
        # Every run has an event; should its row be gone, the relation is left to load lazily.
        if values[split] is not None:
            run.event = read_event(values[split:])
        loaded[run.pk] = run
    return loaded


def _event_model(model: type[models.Model]) -> type[models.Model]:
    return model._meta.get_field("event").related_model
