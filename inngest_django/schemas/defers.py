"""What a deferred run knows about the run that deferred it: Parent and ExperimentRef."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ExperimentRef(BaseModel):
    """Which experiment variant produced a result: passed on through `ctx.defer(experiment=)`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment_name: str
    variant: str


class Parent(BaseModel):
    """The run that deferred this one: its function slug, run id and experiment, if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fn_slug: str
    run_id: str
    experiment: ExperimentRef | None = None
