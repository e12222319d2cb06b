"""The function the step benchmark runs: `data.steps` no-op steps in one run."""

from __future__ import annotations

import inngest_django as inngest

client = inngest.Inngest(app_id="bench")

STEPS_EVENT = "bench/steps.requested"


def noop() -> None:
    """Do nothing, so a step costs only the engine's own work."""


@client.create_function(fn_id="noop-steps", trigger=inngest.TriggerEvent(event=STEPS_EVENT))
def noop_steps(ctx: inngest.Context) -> dict[str, int]:
    """Run `data.steps` no-op steps, each with its own step id."""
    steps = int(ctx.event.data["steps"])
    for index in range(steps):
        ctx.step.run(f"noop-{index}", noop)
    return {"steps": steps}
