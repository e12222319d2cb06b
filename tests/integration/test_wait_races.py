"""A wait or cancel rule and the event it wants, stored at the same moment: never missed."""

from __future__ import annotations

import pytest
from django.utils import timezone

import inngest_django as inngest
from inngest_django.engine import durable_steps
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import Event, FunctionRun

pytestmark = pytest.mark.django_db(transaction=True)


def waiter(client: inngest.Inngest) -> None:
    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="test/ask"))
    def handler(ctx):
        found = ctx.step.wait_for_event("reply", event="test/reply", timeout="1h", match="data.id")
        return found.data["answer"] if found else "timed out"


def reply_while_the_wait_is_stored(monkeypatch, client, data: dict) -> list[int]:
    """Send and dispatch a reply between the wait's boundary and its commit; return counts."""
    boundary_of, dispatched = durable_steps.after_id, []

    def boundary_then_reply() -> str:
        boundary = boundary_of()
        # Another process sends and dispatches the reply after the wait's boundary and before
        # its transaction commits: that dispatch cannot see the wait.
        inngest.send({"name": "test/reply", "data": data})
        dispatched.append(dispatch_pending(registry=client.registry))
        return boundary

    monkeypatch.setattr(durable_steps, "after_id", boundary_then_reply)
    return dispatched


def test_a_reply_dispatched_before_its_wait_committed_still_resolves_it(
    inngest_client, drain, monkeypatch
):
    waiter(inngest_client)
    dispatched = reply_while_the_wait_is_stored(
        monkeypatch, inngest_client, {"id": 7, "answer": "yes"}
    )
    inngest.send({"name": "test/ask", "data": {"id": 7}})
    drain(registry=inngest_client.registry)

    assert dispatched == [1]
    run = FunctionRun.objects.get(function_id="test-waiter")
    assert (run.status, run.output) == (RunStatus.COMPLETED, "yes")


def test_a_reply_for_another_match_value_does_not_resolve_the_wait(
    inngest_client, drain, monkeypatch
):
    waiter(inngest_client)
    reply_while_the_wait_is_stored(monkeypatch, inngest_client, {"id": 8, "answer": "not yours"})
    inngest.send({"name": "test/ask", "data": {"id": 7}})
    drain(registry=inngest_client.registry)

    assert FunctionRun.objects.get(function_id="test-waiter").status == RunStatus.WAITING


def cancellable(client: inngest.Inngest) -> None:
    @client.create_function(
        fn_id="cancellable",
        trigger=inngest.TriggerEvent(event="test/order"),
        cancel=[
            inngest.Cancel(event="test/order.cancelled", if_exp="event.data.id == async.data.id")
        ],
    )
    def handler(ctx):
        return ctx.step.run("ship", lambda: "shipped")


def dispatched_elsewhere(event_id: str) -> None:
    """Mark an event dispatched, as a worker that could not see the new run's rules would."""
    Event.objects.filter(pk=event_id).update(dispatched_at=timezone.now())


@pytest.mark.parametrize(
    ("cancelled_id", "status"), [(1, RunStatus.CANCELLED), (2, RunStatus.COMPLETED)]
)
def test_a_cancel_event_dispatched_before_the_rule_was_stored_still_applies(
    inngest_client, drain, cancelled_id, status
):
    cancellable(inngest_client)
    inngest.send({"name": "test/order", "data": {"id": 1}})
    (cancel_id,) = inngest.send({"name": "test/order.cancelled", "data": {"id": cancelled_id}})
    dispatched_elsewhere(cancel_id)

    drain(registry=inngest_client.registry)

    assert FunctionRun.objects.get(function_id="test-cancellable").status == status


def test_a_cancel_event_sent_before_the_trigger_does_not_apply(inngest_client, drain):
    cancellable(inngest_client)
    (cancel_id,) = inngest.send({"name": "test/order.cancelled", "data": {"id": 1}})
    dispatched_elsewhere(cancel_id)
    inngest.send({"name": "test/order", "data": {"id": 1}})

    drain(registry=inngest_client.registry)

    assert FunctionRun.objects.get(function_id="test-cancellable").status == RunStatus.COMPLETED
