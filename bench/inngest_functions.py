"""The functions the benchmarks run: no-op steps, a parent that defers, and claim targets."""

from __future__ import annotations

import asyncio
import time

import inngest_django as inngest
from inngest_django.registry import FunctionRegistry

client = inngest.Inngest(app_id="bench")

STEPS_EVENT = "bench/steps.requested"
DEFERS_EVENT = "bench/defers.requested"


def noop() -> None:
    """Do nothing, so a step costs only the engine's own work."""


@client.create_function(fn_id="noop-steps", trigger=inngest.TriggerEvent(event=STEPS_EVENT))
def noop_steps(ctx: inngest.Context) -> dict[str, int]:
    """Run `data.steps` no-op steps, each with its own step id."""
    steps = int(ctx.event.data["steps"])
    for index in range(steps):
        ctx.step.run(f"noop-{index}", noop)
    return {"steps": steps}


@client.create_defer(id="noop-deferred")
def noop_deferred(ctx: inngest.Context) -> None:
    """Do nothing, so a deferred run costs only the engine's own work."""


@client.create_function(fn_id="defer-parent", trigger=inngest.TriggerEvent(event=DEFERS_EVENT))
def defer_parent(ctx: inngest.Context) -> dict[str, int]:
    """Make `data.defers` defers to `noop-deferred` around one no-op step, then return.

    `data.placement` is "after" (default) or "before": after the step, the intents are written
    by the finalize transaction; before it, by the step's, which leaves finalize only the
    outbox rows.
    """
    defers = int(ctx.event.data["defers"])
    before = ctx.event.data.get("placement", "after") == "before"

    def make_defers() -> None:
        for index in range(defers):
            ctx.defer(f"defer-{index}", function=noop_deferred, data={"index": index})

    if before:
        make_defers()
    ctx.step.run("noop", noop)
    if not before:
        make_defers()
    return {"defers": defers}


WAITS_EVENT = "bench/waits.requested"
PARALLEL_EVENT = "bench/parallel.requested"


@client.create_function(fn_id="wait-steps", trigger=inngest.TriggerEvent(event=WAITS_EVENT))
def wait_steps(ctx: inngest.Context) -> int:
    """Run `data.steps` steps that each block for `data.wait_s` seconds (a sync HTTP call)."""
    steps, wait = int(ctx.event.data["steps"]), float(ctx.event.data["wait_s"])
    for index in range(steps):
        ctx.step.run(f"wait-{index}", time.sleep, wait)
    return steps


@client.create_function(
    fn_id="async-wait-steps", trigger=inngest.TriggerEvent(event=f"{WAITS_EVENT}.async")
)
async def async_wait_steps(ctx: inngest.Context) -> int:
    """The same steps, awaiting `data.wait_s` seconds each: an async run on the worker's loop."""
    steps, wait = int(ctx.event.data["steps"]), float(ctx.event.data["wait_s"])
    for index in range(steps):
        await ctx.step.run(f"wait-{index}", asyncio.sleep, wait)
    return steps


@client.create_function(fn_id="parallel-waits", trigger=inngest.TriggerEvent(event=PARALLEL_EVENT))
def parallel_waits(ctx: inngest.Context) -> int:
    """`data.count` steps of `data.wait_s` seconds: in group.parallel, or one after another."""
    count, wait = int(ctx.event.data["count"]), float(ctx.event.data["wait_s"])
    if ctx.event.data["mode"] == "sequential":
        for index in range(count):
            ctx.step.run(f"wait-{index}", time.sleep, wait)
    else:
        ctx.group.parallel(
            [lambda i=index: ctx.step.run(f"wait-{i}", time.sleep, wait) for index in range(count)]
        )
    return count


@client.create_function(
    fn_id="async-parallel-waits", trigger=inngest.TriggerEvent(event=f"{PARALLEL_EVENT}.async")
)
async def async_parallel_waits(ctx: inngest.Context) -> int:
    """`data.count` async steps awaiting `data.wait_s` seconds each, in group.parallel."""
    count, wait = int(ctx.event.data["count"]), float(ctx.event.data["wait_s"])
    await ctx.group.parallel(
        [lambda i=index: ctx.step.run(f"wait-{i}", asyncio.sleep, wait) for index in range(count)]
    )
    return count


# The claim-depth bench's functions live in a registry of their own: a function with
# concurrency in the default registry would switch the other benchmarks' workers to the
# concurrency-aware claim.
claim_registry = FunctionRegistry()
claim_client = inngest.Inngest(app_id="bench", registry=claim_registry)

CLAIM_EVENT = "bench/claim.queued"
CLAIM_CONCURRENCY_LIMIT = 2


@claim_client.create_function(
    fn_id="claim-keyed",
    trigger=inngest.TriggerEvent(event=CLAIM_EVENT),
    concurrency=[inngest.Concurrency(limit=CLAIM_CONCURRENCY_LIMIT, key="event.data.k")],
)
def claim_keyed(ctx: inngest.Context) -> None:
    """Never executed: the claim-depth bench only claims its queued runs and releases them."""


@claim_client.create_function(fn_id="claim-plain", trigger=inngest.TriggerEvent(event=CLAIM_EVENT))
def claim_plain(ctx: inngest.Context) -> None:
    """Never executed: the same, for the plain claim of a function without flow control."""
