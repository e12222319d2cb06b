"""A dispatch's batch: new events stamped and read with the look-ups their runs depend on."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from .models import Event, FunctionPause, WaitKey, rows
from .models.queue import stamp_oldest_unset_sql


def claim_for_dispatch(
    *, limit: int, now: datetime, flush_wait: bool = True
) -> tuple[list[Event], set[str], dict[str, list[str]]]:
    """Stamp a batch of new events; return them, the paused functions and their wait keys.

    On PostgreSQL one statement: the stamping UPDATE in a WITH, its rows UNION ALL the
    look-ups', a round trip less on an idle worker's way from an event to its first step.
    `flush_wait=False`: its COMMIT need not wait for the WAL flush (see _NO_FLUSH_WAIT).
    """
    if connection.vendor != "postgresql":
        events = Event.objects.claim_undispatched(limit=limit, now=now)
        if not events:
            return [], set(), {}
        return events, *dispatch_lookups({event.name for event in events})
    quote = connection.ops.quote_name
    fields = Event._meta.concrete_fields
    columns = ", ".join(quote(field.column) for field in fields)
    stamp, params = stamp_oldest_unset_sql(Event, "dispatched_at", columns, limit=limit, now=now)
    padding = "NULL, " * len(fields)
    lookups = _lookups_sql(
        "SELECT name FROM stamped",
        padding=padding,
        paused_if=" WHERE EXISTS (SELECT 1 FROM stamped)",
    )
    sql = (
        f"WITH stamped AS ({stamp}) SELECT {_EVENT}, {columns}, NULL, NULL FROM stamped "
        f"UNION ALL {lookups}"
    )
    if not flush_wait:
        sql += f" UNION ALL SELECT {_EVENT}, {padding}NULL, NULL WHERE {_NO_FLUSH_WAIT}"
    events, paused, wait_keys = [], set(), {}
    read_event = rows.row_reader(Event, connection)
    with rows.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        for kind, *values, name, key in cursor.fetchall():
            if kind == _EVENT:
                event = read_event(values)
                events.append(event)
                wait_keys.setdefault(event.name, [])
            else:
                _take_lookup(kind, name, key, paused, wait_keys)
    return sorted(events, key=lambda event: event.pk), paused, wait_keys


def dispatch_lookups(names: set[str]) -> tuple[set[str], dict[str, list[str]]]:
    """Return the paused function ids and the wait match keys of `names`, in one read."""
    # Raw SQL: on an idle worker's path from an event to its first step, the ORM's union
    # cost more to build than the read.
    sql = _lookups_sql(", ".join(["%s"] * len(names)) or "NULL")
    paused: set[str] = set()
    wait_keys: dict[str, list[str]] = {name: [] for name in names}
    with connection.cursor() as cursor:
        cursor.execute(sql, sorted(names))
        for kind, name, key in cursor.fetchall():
            _take_lookup(kind, name, key, paused, wait_keys)
    return paused, wait_keys


# Never true; evaluated, it sets synchronous_commit off until the transaction ends. A crash
# that drops such a dispatch leaves its durably sent events to be dispatched again; why that
# loses nothing: docs/worker.md, "Handing new runs to an idle worker".
_NO_FLUSH_WAIT = "set_config('synchronous_commit', 'off', true) IS NULL"

# The kinds of row a dispatch reads: a paused function, a wait key of an event name, an event.
_PAUSED, _WAIT_KEY, _EVENT = 0, 1, 2


def _lookups_sql(names: str, *, padding: str = "", paused_if: str = "") -> str:
    """Return the paused functions UNION ALL the wait keys of the event names `names` lists.

    Rows are (kind, *padding, name, key); `padding` lines them up under a wider SELECT.
    """
    quote = connection.ops.quote_name
    return (
        f"SELECT {_PAUSED}, {padding}function_id, '' "
        f"FROM {quote(FunctionPause._meta.db_table)}{paused_if} UNION ALL "
        f"SELECT {_WAIT_KEY}, {padding}event_name, match_key "
        f"FROM {quote(WaitKey._meta.db_table)} WHERE event_name IN ({names})"
    )


def _take_lookup(
    kind: int, name: str, key: str, paused: set[str], wait_keys: dict[str, list[str]]
) -> None:
    if kind == _PAUSED:
        paused.add(name)
    else:
        wait_keys.setdefault(name, []).append(key)
