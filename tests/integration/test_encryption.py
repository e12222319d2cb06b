"""Encryption at rest: no clear payload in the database, rotation, wrong keys, clear rows."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

import inngest_django as inngest
from inngest_django.enums import RunStatus, StepStatus
from inngest_django.event_keys import issue_key
from inngest_django.events import dispatch_pending
from inngest_django.models import DeferIntent, Event, FunctionRun, StepRun, Wait
from inngest_django.sealed_fields import sealed_columns
from tests.testapp.inngest_functions import LIMITED_ENV

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
MARKER = "ZEBRA7Q-marker"
ACCOUNT = f"{MARKER}-account"
# User data in the shape a sealed value is stored in.
SEALED_SHAPED = {"$sealed": "x"}

# Columns computed from event data: with encryption on they hold keyed hashes.
KEY_COLUMNS = [
    ("inngest_django_functionrun", "concurrency_key"),
    ("inngest_django_functionrun", "concurrency_key_2"),
    ("inngest_django_functionrun", "singleton_key"),
    ("inngest_django_functionrun", "debounce_key"),
    ("inngest_django_functionrun", "batch_key"),
    ("inngest_django_functionrun", "flow_note"),
    ("inngest_django_wait", "match_value"),
    ("inngest_django_flowstate", "key"),
    ("inngest_django_idempotencykey", "key"),
]


def use_keys(settings: Any, *keys: str) -> None:
    """Configure this process's ENCRYPTION_KEYS (newest first); none turns encryption off."""
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "ENCRYPTION_KEYS": keys}


def worker_env(*keys: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "tests.encryption_settings",
        "INNGEST_DJANGO_TEST_ENCRYPTION_KEYS": ",".join(keys),
        LIMITED_ENV: "1",
    }


def raw_column(table: str, column: str) -> list[str]:
    """Return a column's non-null values as the database stores them, read with raw SQL."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote(column)} FROM {quote(table)} WHERE {quote(column)} IS NOT NULL"
        )
        return [str(row[0]) for row in cursor.fetchall()]


def payload_columns() -> list[tuple[str, str]]:
    return [(model._meta.db_table, field.column) for model, field in sealed_columns()]


def assert_nothing_clear(marker: str = MARKER) -> None:
    """Assert that no payload or key column holds `marker` in clear."""
    for table, column in payload_columns() + KEY_COLUMNS:
        for value in raw_column(table, column):
            assert marker not in value, f"{table}.{column} holds the marker in clear: {value!r}"


def tokens(table: str, column: str) -> list[str]:
    """Return the Fernet tokens of a sealed JSON column, read with raw SQL."""
    found = []
    for value in raw_column(table, column):
        stored = json.loads(value)
        assert set(stored) == {"$sealed"}, f"{table}.{column} has an unsealed value"
        found.append(stored["$sealed"])
    return found


def opens_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except Exception:
        return False
    return True


def run_of(function_id: str) -> FunctionRun:
    return FunctionRun.objects.get(function_id=function_id)


def step(run: FunctionRun, step_key: str) -> StepRun:
    return StepRun.objects.get(run=run, step_key=step_key)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_end_to_end_and_the_database_holds_no_clear_payload(workers, settings):
    use_keys(settings, KEY_A)
    workers.start("--threads", "2", **worker_env(KEY_A))
    inngest.send(
        [
            {"name": "testapp/enc.start", "data": {"marker": MARKER, "account": ACCOUNT}},
            {"name": "testapp/enc.fail", "data": {"marker": MARKER}},
        ]
    )
    workers.wait_for(
        lambda: Wait.objects.filter(step_key="approval", resolved_at__isnull=True).exists(),
        what="the parent waiting for approval",
        timeout=60,
    )
    inngest.send(
        {"name": "testapp/enc.approved", "data": {"account": ACCOUNT, "by": f"{MARKER}-by"}}
    )
    finished = (
        "testapp-encryption-enc-parent",
        "testapp-encryption-enc-child",
        "testapp-encryption-enc-deferred",
        "testapp-encryption-enc-debounced",
        "testapp-encryption-enc-failing",
    )
    workers.wait_for(
        lambda: (
            FunctionRun.objects.filter(
                function_id__in=finished, status__in=[RunStatus.COMPLETED, RunStatus.FAILED]
            ).count()
            == len(finished)
        ),
        what="every encryption test function to finish",
        timeout=60,
    )

    # Through the ORM every payload reads back: the marker really was stored, sealed.
    parent = run_of("testapp-encryption-enc-parent")
    assert parent.status == RunStatus.COMPLETED, parent.error
    assert parent.output == {
        "result": f"{MARKER}-output",
        "loaded": {"secret": f"{MARKER}-step"},
        "child": {"echo": f"{MARKER}-invoke"},
        "approved_by": f"{MARKER}-by",
    }
    assert parent.event.data == {"marker": MARKER, "account": ACCOUNT}
    assert step(parent, "load").output == {"secret": f"{MARKER}-step"}
    assert step(parent, "approval").output["data"]["by"] == f"{MARKER}-by"
    assert DeferIntent.objects.get(run=parent).payload == {"secret": f"{MARKER}-defer"}
    assert run_of("testapp-encryption-enc-deferred").output == {"got": f"{MARKER}-defer"}
    assert run_of("testapp-encryption-enc-child").event.data["secret"] == f"{MARKER}-invoke"
    failing = run_of("testapp-encryption-enc-failing")
    assert failing.status == RunStatus.FAILED
    assert f"{MARKER}-error" in failing.error["message"]
    assert f"{MARKER}-error" in step(failing, "boom").error["message"]
    assert step(failing, "boom").status == StepStatus.FAILED

    # With raw SQL no payload or key column shows it: payloads are tokens, keys are hashes.
    assert_nothing_clear()
    for table, column in payload_columns():
        if column in ("data", "output", "error", "payload"):
            assert all(opens_with(KEY_A, token) for token in tokens(table, column))
    assert parent.concurrency_key.startswith("testapp-encryption-enc-parent:hmac-sha256:")
    assert run_of("testapp-encryption-enc-debounced").debounce_key.startswith("hmac-sha256:")
    assert Wait.objects.get(step_key="approval").match_value.startswith("hmac-sha256:")
    assert workers.processes[0].poll() is None


@pytest.mark.django_db(transaction=True)
def test_rotation_reads_old_rows_and_reencrypt_lets_the_old_key_go(settings, drain):
    use_keys(settings, KEY_A)
    inngest.send(
        [
            {"name": "testapp/enc.echo", "data": {"marker": MARKER, "n": 1}},
            {"name": "testapp/enc.start", "data": {"marker": MARKER, "account": ACCOUNT}},
        ]
    )
    drain()
    echo = run_of("testapp-encryption-enc-echo")
    assert echo.status == RunStatus.COMPLETED
    wait = Wait.objects.get(step_key="approval", resolved_at__isnull=True)
    hash_under_a = wait.match_value

    # A new key goes first; rows sealed with the old one still read, new rows use the new one.
    use_keys(settings, KEY_B, KEY_A)
    assert run_of("testapp-encryption-enc-echo").output == {"echo": {"marker": MARKER, "n": 1}}
    inngest.send({"name": "testapp/enc.echo", "data": {"marker": MARKER, "n": 2}})
    drain()
    newest = (
        FunctionRun.objects.filter(function_id="testapp-encryption-enc-echo")
        .exclude(pk=echo.pk)
        .get()
    )
    assert newest.output == {"echo": {"marker": MARKER, "n": 2}}
    outputs = tokens("inngest_django_functionrun", "output")
    assert any(opens_with(KEY_A, t) and not opens_with(KEY_B, t) for t in outputs)

    dry = io.StringIO()
    call_command("inngest_reencrypt", "--dry-run", stdout=dry)
    assert "would be re-encrypted" in dry.getvalue()
    assert any(opens_with(KEY_A, t) for t in tokens("inngest_django_event", "data"))

    out = io.StringIO()
    call_command("inngest_reencrypt", "--batch-size", "2", stdout=out)
    assert "inngest_django_event.data:" in out.getvalue()
    assert "pending waits: 1 match values rehashed" in out.getvalue()
    for table, column in [
        ("inngest_django_event", "data"),
        ("inngest_django_functionrun", "output"),
        ("inngest_django_steprun", "output"),
        ("inngest_django_deferintent", "payload"),
    ]:
        assert all(opens_with(KEY_B, t) for t in tokens(table, column)), (table, column)
    assert Wait.objects.get(pk=wait.pk).match_value != hash_under_a
    again = io.StringIO()
    call_command("inngest_reencrypt", stdout=again)
    assert "Done: 0 values re-encrypted" in again.getvalue()

    # The old key removed: everything reads, and the pending wait still matches its event.
    use_keys(settings, KEY_B)
    assert FunctionRun.objects.get(pk=echo.pk).output == {"echo": {"marker": MARKER, "n": 1}}
    inngest.send({"name": "testapp/enc.approved", "data": {"account": ACCOUNT, "by": "ops"}})
    drain()
    parent = run_of("testapp-encryption-enc-parent")
    assert parent.status == RunStatus.COMPLETED, parent.error
    assert parent.output["approved_by"] == "ops"
    assert_nothing_clear()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_wrong_key_fails_the_run_clearly_and_the_worker_serves_others(workers, settings):
    use_keys(settings, KEY_A)
    inngest.send({"name": "testapp/enc.echo", "data": {"marker": MARKER, "n": 1}})
    dispatch_pending()  # a queued run whose event only KEY_A opens
    lost = run_of("testapp-encryption-enc-echo")
    inngest.send({"name": "testapp/enc.echo", "data": {"marker": MARKER, "n": 2}})
    unread_event = Event.objects.get(dispatched_at__isnull=True)

    # The worker (and from now on this process) has only KEY_B, as if KEY_A were dropped early.
    use_keys(settings, KEY_B)
    worker = workers.start("--threads", "2", **worker_env(KEY_B))
    inngest.send({"name": "testapp/enc.echo", "data": {"marker": MARKER, "n": 3}})

    def settled() -> bool:
        runs = FunctionRun.objects.filter(function_id="testapp-encryption-enc-echo")
        done = runs.filter(status__in=[RunStatus.COMPLETED, RunStatus.FAILED]).count()
        return done == 2 and Event.objects.filter(dispatched_at__isnull=True).count() == 0

    workers.wait_for(settled, what="the unreadable run to fail and the good one to finish")
    lost = FunctionRun.objects.get(pk=lost.pk)
    assert lost.status == RunStatus.FAILED
    message = lost.error["message"]
    assert message.startswith(
        f"cannot decrypt inngest_django_event.data (row {lost.event_id}): none of the "
        "configured ENCRYPTION_KEYS fits"
    )
    assert lost.error["name"] == "DecryptionError"
    for secret in (KEY_A, KEY_B, "gAAAAA"):
        assert secret not in str(lost.error)
    good = (
        FunctionRun.objects.filter(function_id="testapp-encryption-enc-echo")
        .exclude(pk=lost.pk)
        .get()
    )
    assert good.status == RunStatus.COMPLETED
    assert good.output == {"echo": {"marker": MARKER, "n": 3}}
    # The event only KEY_A opens was skipped with a logged reason, not retried.
    assert not FunctionRun.objects.filter(event_id=unread_event.pk).exists()
    workers.wait_for_log(
        0, f"Event skipped: cannot decrypt inngest_django_event.data (row {unread_event.pk})"
    )
    assert worker.poll() is None

    # The command names the rows no key opens and refuses to call the old key removable.
    with pytest.raises(CommandError, match=r"inngest_django_event\.data rows"):
        call_command("inngest_reencrypt", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_rows_written_in_clear_still_read_after_encryption_is_turned_on(settings, drain):
    use_keys(settings)
    inngest.send(
        [
            {"name": "testapp/enc.echo", "data": {"marker": MARKER, "n": 1}},
            {"name": "testapp/enc.start", "data": {"marker": MARKER, "account": ACCOUNT}},
        ]
    )
    drain()
    assert any(MARKER in value for value in raw_column("inngest_django_event", "data"))
    clear_wait = Wait.objects.get(step_key="approval", resolved_at__isnull=True)
    assert ACCOUNT in clear_wait.match_value

    use_keys(settings, KEY_A)
    assert run_of("testapp-encryption-enc-echo").output == {"echo": {"marker": MARKER, "n": 1}}
    # The wait stored in clear still matches an event sent with encryption on.
    inngest.send({"name": "testapp/enc.approved", "data": {"account": ACCOUNT, "by": "ops"}})
    drain()
    parent = run_of("testapp-encryption-enc-parent")
    assert parent.status == RunStatus.COMPLETED, parent.error
    assert parent.output["loaded"] == {"secret": f"{MARKER}-step"}

    out = io.StringIO()
    call_command("inngest_reencrypt", stdout=out)
    assert "already current" in out.getvalue()
    for table, column in payload_columns():
        for value in raw_column(table, column):
            assert MARKER not in value, (table, column, value)
    assert run_of("testapp-encryption-enc-echo").output == {"echo": {"marker": MARKER, "n": 1}}


@pytest.mark.django_db
def test_reencrypt_refuses_when_encryption_is_off(settings):
    use_keys(settings)
    with pytest.raises(CommandError, match="Encryption at rest is off"):
        call_command("inngest_reencrypt", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_a_run_with_unreadable_memos_fails_and_its_unreadable_defer_is_skipped(
    settings, drain, caplog
):
    use_keys(settings, KEY_A)
    inngest.send({"name": "testapp/enc.start", "data": {"marker": MARKER, "account": ACCOUNT}})
    drain()
    parent = run_of("testapp-encryption-enc-parent")
    assert parent.status == RunStatus.WAITING

    # KEY_A dropped too early: the parent's memos and its pending defer's payload are lost.
    use_keys(settings, KEY_B)
    FunctionRun.request_cancel(parent.pk, now=parent.created_at)
    with caplog.at_level("ERROR", logger="inngest_django"):
        drain()
    parent = FunctionRun.objects.get(pk=parent.pk)
    assert parent.status == RunStatus.FAILED
    assert parent.error["message"].startswith("cannot decrypt inngest_django_steprun.output (row ")
    assert not Wait.objects.filter(run=parent, resolved_at__isnull=True).exists()
    intent = DeferIntent.objects.get(run=parent)
    assert intent.status == "SCHEDULED"
    assert (
        f"Defer skipped: cannot decrypt inngest_django_deferintent.payload (row {intent.pk})"
        in (caplog.text)
    )
    assert not FunctionRun.objects.filter(function_id="testapp-encryption-enc-deferred").exists()

    # Another run goes on as usual.
    inngest.send({"name": "testapp/enc.echo", "data": {"marker": MARKER}})
    drain()
    assert run_of("testapp-encryption-enc-echo").output == {"echo": {"marker": MARKER}}


@pytest.fixture
def echo_shaped(inngest_client) -> list[Any]:
    """Register a function that steps, defers and returns its event data; return what it saw."""
    seen: list[Any] = []

    @inngest.create_defer(inngest_client, id="shaped-deferred")
    def shaped_deferred(ctx: inngest.Context) -> Any:
        seen.append(ctx.event.data)
        return ctx.event.data

    @inngest_client.create_function(
        fn_id="shaped", trigger=inngest.TriggerEvent(event="testapp/shaped")
    )
    def shaped(ctx: inngest.Context) -> Any:
        data = ctx.event.data
        seen.append(data)
        echoed = ctx.step.run("echo", lambda: data)
        ctx.defer("later", function=shaped_deferred, data=echoed)
        return echoed

    return seen


def send_through(through: str, event: dict[str, Any]) -> None:
    if through == "send":
        inngest.send(event)
        return
    _, key = issue_key("shaped producer")
    url = reverse("inngest-event-api", kwargs={"event_key": key})
    response = Client().post(url, json.dumps(event), content_type="application/json")
    assert response.status_code == 200, response.content


def assert_every_payload_reads_as_sent(seen: list[Any]) -> None:
    run = FunctionRun.objects.get(function_id="test-shaped")
    assert run.status == RunStatus.COMPLETED, run.error
    assert Event.objects.get(pk=run.event_id).data == SEALED_SHAPED
    assert run.output == SEALED_SHAPED
    assert step(run, "echo").output == SEALED_SHAPED
    assert DeferIntent.objects.get(run=run).payload == SEALED_SHAPED
    deferred = FunctionRun.objects.get(function_id="test-shaped-deferred")
    assert (deferred.status, deferred.output) == (RunStatus.COMPLETED, SEALED_SHAPED)
    assert seen and all(data == SEALED_SHAPED for data in seen), seen


@pytest.mark.django_db
@pytest.mark.parametrize("through", ["send", "event-api"])
@pytest.mark.parametrize("keys", [(), (KEY_A,)], ids=["encryption-off", "encryption-on"])
def test_data_in_the_sealed_shape_starts_its_run_and_reads_back_as_sent(
    settings, drain, echo_shaped, keys, through
):
    use_keys(settings, *keys)
    send_through(through, {"name": "testapp/shaped", "data": SEALED_SHAPED})
    drain()
    assert_every_payload_reads_as_sent(echo_shaped)


@pytest.mark.django_db(transaction=True)
def test_clear_values_in_the_sealed_shape_are_sealed_by_reencrypt(settings, drain, echo_shaped):
    use_keys(settings)
    inngest.send({"name": "testapp/shaped", "data": SEALED_SHAPED})
    drain()

    use_keys(settings, KEY_A)
    out = io.StringIO()
    call_command("inngest_reencrypt", stdout=out)
    assert "Done: 0 values re-encrypted" not in out.getvalue()
    for table, column in [
        ("inngest_django_event", "data"),
        ("inngest_django_functionrun", "output"),
        ("inngest_django_steprun", "output"),
        ("inngest_django_deferintent", "payload"),
    ]:
        assert all(opens_with(KEY_A, t) for t in tokens(table, column)), (table, column)
    assert_every_payload_reads_as_sent(echo_shaped)
