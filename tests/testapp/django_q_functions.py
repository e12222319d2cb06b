"""Functions the django_q executor tests send events to: a step, a sleep, a retry, a defer."""

from __future__ import annotations

from datetime import timedelta

import inngest_django as inngest

from .inngest_functions import _journal
from .models import Order

NAP = timedelta(milliseconds=500)

client = inngest.Inngest(app_id="djq")


@inngest.create_defer(client, id="after")
def after(ctx: inngest.Context) -> str:
    """Write one Order row for the run that deferred this one."""
    parent = ctx.parents[0].run_id

    def write() -> str:
        _journal(parent, "after", "start")
        Order.objects.create(reference=parent, step_key="after")
        return "after"

    return ctx.step.run("write", write)


@client.create_function(fn_id="flow", trigger=inngest.TriggerEvent(event="djq/flow"))
def flow(ctx: inngest.Context) -> dict:
    """A step, a sleep, a step that fails on its first attempt, and a defer."""

    def before() -> str:
        _journal(ctx.run_id, "before", "start")
        Order.objects.create(reference=ctx.run_id, step_key="before")
        return "before"

    def flaky() -> int:
        _journal(ctx.run_id, "flaky", "start")
        if ctx.attempt == 0:
            raise RuntimeError("the first attempt fails")
        Order.objects.create(reference=ctx.run_id, step_key="flaky")
        return ctx.attempt

    ctx.step.run("before", before)
    ctx.step.sleep("nap", NAP)
    attempt = ctx.step.run("flaky", flaky)
    ctx.defer("after", function=after, data={})
    return {"flaky_attempt": attempt}
