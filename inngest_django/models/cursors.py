"""Cursors for the hot path's statements: prepared once on PostgreSQL, rewritten once on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.utils.asyncio import async_unsafe

from ..conf import app_settings


def prepared_cursor(db: Any = connection) -> Any:
    """Return a cursor whose statements PostgreSQL parses and plans once per connection.

    Django's cursors bind parameters on the client, so the server parses and plans every call
    of a hot statement afresh: the run's finish spent as long being planned as executing. This
    cursor binds on the server and prepares each statement it runs. Elsewhere, or with
    PREPARED_STATEMENTS off, a `statement_cursor`.
    """
    db = unproxied(db)
    if db.vendor != "postgresql" or not app_settings.PREPARED_STATEMENTS:
        return statement_cursor(db)
    return _wrapped(db, _preparing_cursor_class(), logged=_LoggedPreparedCursor)


class _LoggedPreparedCursor(CursorDebugWrapper):
    """Logs a prepared statement with its parameters in place, as Django logs its own.

    Django reads the logged SQL back from psycopg, which keeps no text for a prepared
    statement.
    """

    def execute(self, sql: str, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params), params):
            return CursorWrapper.execute(self, sql, params)


def statement_cursor(db: Any = connection) -> Any:
    """Return a cursor for the hot path's statements: Django's, but on SQLite a leaner one.

    Django's SQLite cursor rewrites each statement's placeholders with a regular expression on
    every call, which costs a long INSERT more than SQLite takes to run it; this one rewrites
    each statement text once.
    """
    db = unproxied(db)
    if db.vendor == "sqlite":
        return _wrapped(db, lambda raw: raw.cursor(factory=_sqlite_cursor_class()))
    return db.cursor()


def unproxied(db: Any) -> Any:
    """Return the connection behind Django's `connection` proxy, which looks it up per read."""
    return connections[DEFAULT_DB_ALIAS] if db is connection else db


@async_unsafe
def _wrapped(
    db: Any, open_cursor: Callable[[Any], Any], *, logged: type = CursorDebugWrapper
) -> Any:
    """Open a driver cursor as Django's cursor() does, inside Django's own cursor wrapper.

    The wrapper runs the connection's execute wrappers (SQLite's write queue), maps errors
    and, while queries are logged, logs each statement (with `logged`).
    """
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        cursor = open_cursor(db.connection)
    return (logged if db.queries_logged else CursorWrapper)(cursor, db)


@cache
def _sqlite_cursor_class() -> type:
    from django.db.backends.sqlite3.base import Database, SQLiteCursorWrapper

    class ConvertOnceCursor(SQLiteCursorWrapper):
        """Django's SQLite cursor, with "format" placeholders rewritten once per text."""

        def execute(self, query: str, params: Any = None) -> Any:
            if params is None or isinstance(params, Mapping):
                return super().execute(query, params)
            return Database.Cursor.execute(self, _qmark(self, query), params)

    return ConvertOnceCursor


_QMARK: dict[str, str] = {}


def _qmark(cursor: Any, query: str) -> str:
    """Return `query` with its placeholders as SQLite takes them, rewritten once per text."""
    converted = _QMARK.get(query)
    if converted is None:
        converted = cursor.convert_query(query)
        # The hot path's texts are few; a bound keeps an unforeseen stream from growing it.
        if len(_QMARK) < 1024:
            _QMARK[query] = converted
    return converted


@cache
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        """A server-binding cursor that prepares every statement it executes."""

        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            psycopg_connection = self.connection
            threshold = psycopg_connection.prepare_threshold
            # Django sets psycopg's threshold to None, which also ignores prepare=True; it is
            # restored at once, so the connection's other cursors prepare as configured.
            psycopg_connection.prepare_threshold = 0 if threshold is None else threshold
            try:
                return super().execute(query, params, prepare=True, **options)
            finally:
                psycopg_connection.prepare_threshold = threshold

    return PreparingCursor
