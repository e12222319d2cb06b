"""Functions the integration tests run in worker subprocesses."""

from __future__ import annotations

import os
import time

from django.db.models import F

import inngest_django as inngest

from .models import Call, Order

client = inngest.Inngest(app_id="testapp")


def _record_call(run_id: str, name: str) -> None:
    Call.objects.create(run_id=run_id, name=name, pid=os.getpid())


@client.create_function(fn_id="write-orders", trigger=inngest.TriggerEvent(event="testapp/orders"))
def write_orders(ctx: inngest.Context) -> dict:
    """Each step writes one Order row in the step's transaction; data.pause_s slows each step."""
    steps = int(ctx.event.data.get("steps", 3))
    pause = float(ctx.event.data.get("pause_s", 0))
    for index in range(steps):

        def write(index: int = index) -> int:
            Order.objects.create(reference=ctx.run_id, step_key=f"s{index}")
            time.sleep(pause)
            return index

        ctx.step.run(f"s{index}", write)
    return {"steps": steps}
