"""PostgreSQL triggers that NOTIFY idle workers of committed work; nothing on other databases."""

from __future__ import annotations

from typing import Any

from django.db import migrations

# The channel inngest_django.notify LISTENs on.
CHANNEL = "inngest_django"
# A run due this close to now wakes workers: the clocks of the app servers that wrote
# available_at and of the database may disagree a little, and an early wake costs one read.
SKEW = "interval '1 second'"
WAITING_STATUSES = "'QUEUED', 'SLEEPING', 'WAITING'"


def _triggers(event: str, run: str, outbox: str) -> list[tuple[str, str, str, str]]:
    """Return (name, table, timing, condition) for each statement-level trigger."""
    due_now = f"n.status IN ({WAITING_STATUSES}) AND n.available_at <= clock_timestamp() + {SKEW}"
    return [
        # Engine events born dispatched (cron ticks, invokes) need no dispatcher.
        (
            "inngest_django_event_notify",
            event,
            "AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows",
            "SELECT 1 FROM new_rows n WHERE n.dispatched_at IS NULL",
        ),
        (
            "inngest_django_outbox_notify",
            outbox,
            "AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows",
            "SELECT 1 FROM new_rows n WHERE n.relayed_at IS NULL",
        ),
        (
            "inngest_django_run_insert_notify",
            run,
            "AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows",
            f"SELECT 1 FROM new_rows n WHERE {due_now}",
        ),
        # RUNNING rows are left out: their available_at is the lease expiry, so claims, step
        # commits and heartbeats notify no one. A wake, a cancel request or a retry due now does.
        (
            "inngest_django_run_update_notify",
            run,
            "AFTER UPDATE ON {table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
            "SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id "
            f"WHERE {due_now} AND (o.status IS DISTINCT FROM n.status "
            "OR o.available_at IS DISTINCT FROM n.available_at)",
        ),
    ]


def _tables(apps: Any) -> tuple[str, str, str]:
    return tuple(  # type: ignore[return-value]
        apps.get_model("inngest_django", name)._meta.db_table
        for name in ("Event", "FunctionRun", "OutboxMessage")
    )


def create_triggers(apps: Any, schema_editor: Any) -> None:
    """Create one NOTIFY per statement, after rows that give a worker something to do now."""
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for name, table, timing, condition in _triggers(*_tables(apps)):
        # One payload per trigger: PostgreSQL folds identical notifications of a transaction
        # into one, so a 5,000-event send or a multi-statement dispatch wakes workers once.
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF EXISTS ({condition}) THEN "
            f"PERFORM pg_notify('{CHANNEL}', '{table}'); END IF; RETURN NULL; END $$"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {name} {timing.format(table=quote(table))} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )


def drop_triggers(apps: Any, schema_editor: Any) -> None:
    """Drop the triggers and their functions."""
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for name, table, _, _ in _triggers(*_tables(apps)):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {quote(table)}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")


class Migration(migrations.Migration):
    dependencies = [
        ("inngest_django", "0006_event_keys_and_reruns"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
