"""Single-row writes in raw SQL for the run's hot path, with the ORM's own value conversion.

A QuerySet builds and compiles its SQL on every call, which costs a one-step run more than its
statements do. These helpers build a statement once per model and shape, and convert values
with each field's `get_db_prep_save`, so sealed columns are encrypted and datetimes adapted
exactly as the ORM would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import DateField, DateTimeField, Field
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

from ..sealed_fields import SealedJSONField, SealedTextField
from .cursors import prepared_cursor, statement_cursor, unproxied


@cache
def _insert_sql(
    model: type[models.Model], vendor: str, computed: tuple[tuple[str, str], ...]
) -> str:
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    as_sql = dict(computed)
    columns = ", ".join(quote(field.column) for field in fields)
    marks = ", ".join(f"({as_sql[f.name]})" if f.name in as_sql else "%s" for f in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"


def insert(
    row: models.Model, *, computed: Mapping[str, tuple[str, list[Any]]] | None = None
) -> None:
    """INSERT `row` as `save(force_insert=True)` would; `computed` gives columns as SQL."""
    db = unproxied(connection)
    params, shape = _insert_params(row, computed or {}, db)
    with statement_cursor(db) as cursor:
        cursor.execute(_insert_sql(type(row), db.vendor, shape), params)
    _inserted(row, db.alias)


# Parameters of one multi-row INSERT at most: PostgreSQL takes 65,535, SQLite's builds often
# 32,766; a larger send goes through bulk_create, which splits it in a transaction.
MAX_INSERT_PARAMS = 30000


def insert_all(rows: Sequence[models.Model], *, using: str = DEFAULT_DB_ALIAS) -> bool:
    """INSERT `rows` of one model in one statement, as bulk_create would store them.

    bulk_create opens a transaction of its own, which outside the caller's costs a BEGIN and a
    COMMIT round trip more than the INSERT, itself atomic. Returns False, storing nothing, if
    the rows need more parameters than one statement takes.
    """
    db = connections[using]
    fields = rows[0]._meta.concrete_fields
    if len(rows) > _rows_per_insert(db, fields, rows):
        return False
    params = [param for row in rows for param in _insert_params(row, {}, db)[0]]
    one_row = _insert_sql(type(rows[0]), db.vendor, ())
    marks = one_row[one_row.index(" VALUES ") + len(" VALUES ") :]
    with db.cursor() as cursor:
        cursor.execute(one_row + f", {marks}" * (len(rows) - 1), params)
    for row in rows:
        _inserted(row, using)
    return True


def _rows_per_insert(db: Any, fields: Sequence[models.Field], rows: Sequence[Any]) -> int:
    """Return how many rows of `fields` one INSERT on `db` takes."""
    if db.vendor != "sqlite":
        return min(MAX_INSERT_PARAMS // len(fields), db.ops.bulk_batch_size(fields, rows))
    # Django 5.2 assumes SQLite's limit before 3.32, 999 parameters: dispatch's batch of 100
    # runs went to bulk_create as four INSERTs. The connection knows its own limit.
    db.ensure_connection()
    limit = db.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return min(MAX_INSERT_PARAMS, limit) // len(fields)


def _insert_params(
    row: models.Model, computed: Mapping[str, tuple[str, list[Any]]], db: Any = connection
) -> tuple[list[Any], tuple[tuple[str, str], ...]]:
    """Return an INSERT's parameters for `row`, and the shape its SQL is cached under."""
    params: list[Any] = []
    db = unproxied(db)
    for column in _columns(type(row), db.alias):
        field = column.field
        if computed and field.name in computed:
            params.extend(computed[field.name][1])
            continue
        value = getattr(row, column.attname) if column.plain else field.pre_save(row, add=True)
        params.append(_param(column, value, db))
    return params, tuple(sorted((name, sql) for name, (sql, _) in computed.items()))


def _param(column: _Column, value: Any, db: Any) -> Any:
    """Return `value` converted for `column` as the field's get_db_prep_save converts it."""
    kind = type(value)
    blanks = column.blanks
    # None, "" and 0, which most columns of a new row hold, are converted once a column.
    if blanks is not None and (value is None or (kind in (str, int) and not value)):
        if (kind, value) not in blanks:
            blanks[kind, value] = column.field.get_db_prep_save(value, db)
        return blanks[kind, value]
    if kind is str and column.text:
        # What CharField's and TextField's preparation comes to for a str.
        return value
    if kind is datetime and column.datetime and value.tzinfo is not None:
        # What DateTimeField's own preparation comes to for an aware datetime.
        return adapt_datetime(value, db)
    return column.field.get_db_prep_save(value, db)


def adapt_datetime(value: datetime, db: Any = connection) -> Any:
    """Return `value` as the backend's adapter for DateTimeField returns it.

    On SQLite that adapter checks and converts the time zone in four calls; a UTC value (what
    the clock gives) needs only its offset dropped, which is the same text.
    """
    db = unproxied(db)
    # The connection's time zone is UTC only with USE_TZ on and no TIME_ZONE of its own.
    if (
        type(value) is datetime
        and value.tzinfo is UTC
        and db.vendor == "sqlite"
        and db.timezone is UTC
    ):
        return str(value.replace(tzinfo=None))
    return db.ops.adapt_datetimefield_value(value)


@dataclass(frozen=True)
class _Column:
    """A concrete field as `_insert_params` converts it, with what it can skip."""

    field: models.Field
    attname: str
    # pre_save only reads the attribute (no auto_now), so the read is done directly.
    plain: bool
    # A plain DateTimeField: an aware value needs only the backend's adapter.
    datetime: bool
    # A plain CharField or TextField: a str goes in as it is.
    text: bool
    # Converted None, "" and 0 (None: not cached; a sealed field seals them afresh).
    blanks: dict[tuple[type, Any], Any] | None


@cache
def _columns(model: type[models.Model], alias: str) -> tuple[_Column, ...]:
    """Return `model`'s columns as `_insert_params` converts them."""
    sealed = (SealedJSONField, SealedTextField)
    # These pre_saves only read the attribute unless auto_now or auto_now_add is set.
    plain_pre_save = (Field.pre_save, DateField.pre_save, DateTimeField.pre_save)
    columns = []
    for field in model._meta.concrete_fields:
        auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        plain = type(field).pre_save in plain_pre_save and not auto
        columns.append(
            _Column(
                field=field,
                attname=field.attname,
                plain=plain,
                datetime=plain and type(field) is DateTimeField,
                text=plain and type(field) in (models.CharField, models.TextField),
                blanks=None if isinstance(field, sealed) else {},
            )
        )
    return tuple(columns)


@cache
def _columns_by_name(model: type[models.Model], alias: str) -> dict[str, _Column]:
    """Return `model`'s columns by field name, for an UPDATE's values."""
    columns = _columns(model, alias)
    return {name: c for c in columns for name in (c.field.name, c.attname)}


M = TypeVar("M", bound=models.Model)


def new_row(model: type[M], **values: Any) -> M:
    """Return an unsaved `model(**values)`, built without Model.__init__'s per-field loop.

    The hot path builds a run and a finish event per run; __init__ looks up each of their
    thirty-odd fields' defaults every time. Here the constant defaults are copied from a
    per-model dict, and only callable ones (and database defaults) are called. A model with
    pre_init or post_init receivers, or a name that is not a field, goes through __init__.
    """
    fixed, called, names = _defaults(model)
    heard = pre_init.has_listeners(model) or post_init.has_listeners(model)
    if heard or not names.issuperset(values):
        return model(**values)
    row = model.__new__(model)
    state = row.__dict__
    state["_state"] = ModelState()
    state.update(fixed)
    for attname, default in called:
        state[attname] = default()
    for name, value in values.items():
        setattr(row, name, value)
    return row


@cache
def _defaults(
    model: type[models.Model],
) -> tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...], frozenset[str]]:
    """Return `model`'s constant defaults, its computed ones, and the names it takes."""
    fixed: dict[str, Any] = {}
    called = []
    names = set()
    for field in model._meta.concrete_fields:
        names.update((field.name, field.attname))
        computed = field.has_default() and callable(field.default)
        if computed or field.has_db_default():
            called.append((field.attname, field.get_default))
        else:
            fixed[field.attname] = field.get_default()
    return fixed, tuple(called), frozenset(names)


@cache
def _update_sql(model: type[models.Model], vendor: str, names: tuple[str, ...], where: str) -> str:
    quote = connection.ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in names)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where}"


@dataclass(frozen=True)
class PendingInsert:
    """An INSERT of `row` (with `computed` columns, as `insert` takes them) not sent yet."""

    row: models.Model
    computed: Mapping[str, tuple[str, list[Any]]] | None = None


def update(
    model: type[models.Model],
    values: Mapping[str, Any],
    where: str,
    where_params: list[Any],
    *,
    then_insert: PendingInsert | None = None,
    also: tuple[str, list[Any]] | None = None,
) -> int:
    """UPDATE `model`'s rows matching `where` (SQL) with `values`; return the row count.

    `then_insert` is inserted if the UPDATE changed a row: in the same statement on
    PostgreSQL (the UPDATE in a WITH that the INSERT selects from), so a run's finish and its
    finish event cost one round trip; after it elsewhere. `also` (PostgreSQL only) is one more
    INSERT of that statement, as SQL that selects FROM changed, with its parameters.
    """
    names = tuple(values)
    db = unproxied(connection)
    by_name = _columns_by_name(model, db.alias)
    params = [_param(by_name[name], values[name], db) for name in names]
    sql = _update_sql(model, db.vendor, names, where)
    if (then_insert is not None or also is not None) and db.vendor == "postgresql":
        # Each INSERT selects FROM changed: it stores its row only if the UPDATE changed one.
        inserts = [also] if also is not None else []
        if then_insert is not None:
            inserts.append(_insert_parts(then_insert))
        *ctes, (last_sql, last_params) = inserts
        statement = f"WITH changed AS ({sql} RETURNING 1)"
        statement += "".join(f", also_{n} AS ({cte_sql})" for n, (cte_sql, _) in enumerate(ctes))
        cte_params = [param for _, cte_params in ctes for param in cte_params]
        with prepared_cursor() as cursor:
            cursor.execute(
                f"{statement} {last_sql}", [*params, *where_params, *cte_params, *last_params]
            )
            changed = cursor.rowcount
        if changed and then_insert is not None:
            _inserted(then_insert.row)
        return changed
    if also is not None:
        raise ValueError("also: one statement with the UPDATE is PostgreSQL's only")
    with statement_cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        changed = cursor.rowcount
    if changed and then_insert is not None:
        insert(then_insert.row, computed=then_insert.computed)
    return changed


def _insert_parts(pending: PendingInsert) -> tuple[str, list[Any]]:
    """Return `INSERT ... SELECT ... FROM changed` for `pending`, and its parameters."""
    params, shape = _insert_params(pending.row, pending.computed or {})
    return _insert_select_sql(type(pending.row), shape), params


@cache
def _insert_select_sql(model: type[models.Model], computed: tuple[tuple[str, str], ...]) -> str:
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    as_sql = dict(computed)
    columns = ", ".join(quote(f.column) for f in fields)
    # Cast: in a SELECT list a parameter takes no type from the column it goes to.
    values = ", ".join(
        f"({as_sql[f.name]})" if f.name in as_sql else f"CAST(%s AS {f.cast_db_type(connection)})"
        for f in fields
    )
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) SELECT {values} FROM changed"


def _inserted(row: models.Model, alias: str | None = None) -> None:
    row._state.adding = False
    row._state.db = alias or connection.alias


def row_reader(model: type[models.Model], db: Any) -> Callable[[Sequence[Any]], Any]:
    """Return a function that builds a `model` instance from its concrete columns' raw values.

    The values are converted as a QuerySet's read converts them (a sealed column decrypted, a
    JSON one parsed); the converters are looked up once per connection, not once per row.
    """
    # The converters are kept on this thread's connection, not on the proxy.
    db = unproxied(db)
    names, converters = _reader_parts(model, db)

    def read(values: Sequence[Any]) -> Any:
        converted = list(values)
        for index, column, functions in converters:
            for function in functions:
                converted[index] = function(converted[index], column, db)
        return model.from_db(db.alias, names, converted)

    return read


def _reader_parts(model: type[models.Model], db: Any) -> tuple[list[str], list[Any]]:
    """Return `model`'s attribute names and, by column index, the converters `db` reads with.

    Looking them up cost 20 us for an event and 94 for a run on every claim: more than
    converting the rows it returned. Kept on the connection itself, so they go with it: a
    cache of its own would keep a finished thread's connection, and its session, open.
    """
    kept = db.__dict__.setdefault("_inngest_row_readers", {})
    parts = kept.get(model)
    if parts is None:
        fields = model._meta.concrete_fields
        columns = [field.get_col(model._meta.db_table) for field in fields]
        converters = [
            (index, column, db.ops.get_db_converters(column) + column.get_db_converters(db))
            for index, column in enumerate(columns)
        ]
        parts = [field.attname for field in fields], [entry for entry in converters if entry[2]]
        kept[model] = parts
    return parts
