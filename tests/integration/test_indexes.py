"""Every write of a run, a step or an event maintains only the indexes some read uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from inngest_django.models import FunctionRun, StepRun

pytestmark = pytest.mark.django_db


def plan_of(queryset) -> str:
    """Return the database's plan for `queryset`, with scans by table forbidden on PostgreSQL."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A test table of a few rows is read whole otherwise; the question is whether the
            # index can serve the filter at all.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def index_definition(name: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        else:
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s", [name]
            )
        [(definition,)] = cursor.fetchall()
    return definition


def test_a_step_rows_run_is_indexed_once_by_its_unique_key():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, StepRun._meta.db_table)
    on_run = [
        name
        for name, constraint in constraints.items()
        if (constraint["index"] or constraint["unique"]) and constraint["columns"][:1] == ["run_id"]
    ]
    assert on_run == ["inngest_step_unique_key"]
    assert constraints["inngest_step_unique_key"]["columns"] == ["run_id", "step_key"]
    plan = plan_of(StepRun.objects.filter(run_id="R1").order_by())
    # SQLite stores a table's unique constraint as an index of its own naming.
    assert "inngest_step_unique_key" in plan or "USING INDEX sqlite_autoindex" in plan


@pytest.mark.parametrize(
    ("index", "column"),
    [
        ("inngest_run_parent", "parent_run_id"),
        ("inngest_run_rerun_of", "rerun_of_id"),
        ("inngest_run_started_set", "started_at"),
        ("inngest_run_finished_set", "finished_at"),
    ],
)
def test_optional_run_columns_are_indexed_only_where_set(index, column):
    definition = index_definition(index)
    assert "WHERE" in definition.upper()
    assert "IS NOT NULL" in definition.upper()
    assert column in definition


def test_reads_of_the_optional_columns_use_their_partial_indexes():
    now = timezone.now()
    window = {"gte": now - timedelta(minutes=5), "lte": now}
    reads = {
        "inngest_run_parent": FunctionRun.objects.filter(parent_run_id="R1"),
        "inngest_run_rerun_of": FunctionRun.objects.filter(rerun_of_id__in=["R1", "R2"]),
        "inngest_run_started_set": FunctionRun.objects.filter(
            started_at__gte=window["gte"], started_at__lte=window["lte"]
        ),
        "inngest_run_finished_set": FunctionRun.objects.filter(finished_at__lt=now),
    }
    for index, queryset in reads.items():
        assert index in plan_of(queryset.order_by().values("pk")), index


def test_ids_have_no_pattern_copy_of_their_index():
    if connection.vendor != "postgresql":
        pytest.skip("Django adds varchar_pattern_ops copies on PostgreSQL only")
    tables = [model._meta.db_table for model in apps.get_app_config("inngest_django").get_models()]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, a.attname FROM pg_index x "
            "JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_opclass o ON o.oid = x.indclass[0] "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
            "WHERE o.opcname = 'varchar_pattern_ops' AND t.relname = ANY(%s)",
            [tables],
        )
        patterned = set(cursor.fetchall())
    keys = {
        (model._meta.db_table, field.column)
        for model in apps.get_app_config("inngest_django").get_models()
        for field in model._meta.concrete_fields
        if field.primary_key or field.is_relation
    }
    assert keys & {("inngest_django_functionrun", "id"), ("inngest_django_steprun", "run_id")}
    assert not patterned & keys
    assert ("inngest_django_event", "external_id") not in patterned
    # Event names are matched by prefix (the admin's search and filter): theirs stays.
    assert ("inngest_django_event", "name") in patterned
