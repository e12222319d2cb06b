"""The functions the benchmarks run: no-op steps, and a parent that defers to a no-op."""

from __future__ import annotations

import inngest_django as inngest

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
