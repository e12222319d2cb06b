"""A wait and the event it wants, stored at the same moment: the event is never missed."""

from __future__ import annotations

import pytest

import inngest_django as inngest
from inngest_django import executor
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reply_dispatched_before_its_wait_committed_still_resolves_it(client, drain, monkeypatch):
    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="test/ask"))
    def waiter(ctx):
        found = ctx.step.wait_for_event("reply", event="test/reply", timeout="1h", match="data.id")
        return found.data["answer"] if found else "timed out"

    boundary_of = executor.after_id

    def boundary_then_reply() -> str:
        boundary = boundary_of()
        # Another process sends and dispatches the reply after the wait's boundary and before
        # its transaction commits: that dispatch cannot see the wait.
        inngest.send({"name": "test/reply", "data": {"id": 7, "answer": "yes"}})
        assert dispatch_pending(registry=client.registry) == 1
        return boundary

    monkeypatch.setattr(executor, "after_id", boundary_then_reply)
    inngest.send({"name": "test/ask", "data": {"id": 7}})
    drain(registry=client.registry)

    run = FunctionRun.objects.get(function_id="test-waiter")
    assert (run.status, run.output) == (RunStatus.COMPLETED, "yes")


def test_a_reply_for_another_match_value_does_not_resolve_the_wait(client, drain, monkeypatch):
    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="test/ask"))
    def waiter(ctx):
        found = ctx.step.wait_for_event("reply", event="test/reply", timeout="1h", match="data.id")
        return found.data["answer"] if found else "timed out"

    boundary_of = executor.after_id

    def boundary_then_other_reply() -> str:
        boundary = boundary_of()
        inngest.send({"name": "test/reply", "data": {"id": 8, "answer": "not yours"}})
        dispatch_pending(registry=client.registry)
        return boundary

    monkeypatch.setattr(executor, "after_id", boundary_then_other_reply)
    inngest.send({"name": "test/ask", "data": {"id": 7}})
    drain(registry=client.registry)

    assert FunctionRun.objects.get(function_id="test-waiter").status == RunStatus.WAITING
