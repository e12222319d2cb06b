from __future__ import annotations

import pytest

import inngest_django as inngest
from inngest_django.models import FunctionRun


@pytest.mark.django_db
def test_three_steps(client, drain):
    calls = []

    @client.create_function(fn_id="three", trigger=inngest.TriggerEvent(event="t/three"))
    def three(ctx):
        a = ctx.step.run("a", lambda: calls.append("a") or 1)
        b = ctx.step.run("b", lambda: calls.append("b") or a + 1)
        c = ctx.step.run("c", lambda: calls.append("c") or b + 1)
        return {"sum": a + b + c}

    client.send(inngest.Event(name="t/three", data={}))
    drain()
    run = FunctionRun.objects.get(function_id="test-three")
    assert run.status == "COMPLETED", run.error
    assert run.output == {"sum": 6}
    assert calls == ["a", "b", "c"]
