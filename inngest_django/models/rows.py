"""Single-row writes in raw SQL for the run's hot path, with the ORM's own value conversion.

A QuerySet builds and compiles its SQL on every call, which costs a one-step run more than its
statements do. These helpers build a statement once per model and shape, and convert values
with each field's `get_db_prep_save`, so sealed columns are encrypted and datetimes adapted
exactly as the ORM would.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from django.db import connection, models


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
    computed = computed or {}
    params: list[Any] = []
    for field in row._meta.concrete_fields:
        if field.name in computed:
            params.extend(computed[field.name][1])
        else:
            params.append(field.get_db_prep_save(field.pre_save(row, add=True), connection))
    shape = tuple(sorted((name, sql) for name, (sql, _) in computed.items()))
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(type(row), connection.vendor, shape), params)
    row._state.adding = False
    row._state.db = connection.alias


@cache
def _update_sql(model: type[models.Model], vendor: str, names: tuple[str, ...], where: str) -> str:
    quote = connection.ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in names)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where}"


def update(
    model: type[models.Model], values: Mapping[str, Any], where: str, where_params: list[Any]
) -> int:
    """UPDATE `model`'s rows matching `where` (SQL) with `values`; return the row count."""
    names = tuple(values)
    meta = model._meta
    params = [meta.get_field(name).get_db_prep_save(values[name], connection) for name in names]
    sql = _update_sql(model, connection.vendor, names, where)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        return cursor.rowcount
