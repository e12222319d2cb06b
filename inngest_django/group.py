"""`ctx.group`: tools that coordinate steps (parallel, experiments); works over Step only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._interrupts import Interrupt, StepPlanned
from .exceptions import NonRetriableError
from .experiment import Strategy
from .schemas.defers import ExperimentRef
from .steps import PlannedStep, Step

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ExperimentResult(Generic[T]):
    """What `ctx.group.experiment` returns: the variant's result, its name and its ref."""

    result: T
    variant: str
    experiment_ref: ExperimentRef


class Group:
    """`ctx.group`: run steps side by side, or experiments, over the run's step tools."""

    def __init__(self, step: Step, run_id: str) -> None:
        self._step = step
        self._run_id = run_id

    def experiment(
        self,
        experiment_id: str,
        *,
        variants: Mapping[str, Callable[[], T]],
        select: Strategy,
    ) -> ExperimentResult[T]:
        """Choose a variant once per run, then run it at top level so its steps are normal steps.

        The choice is memoized as the step `experiment_id`, so retries and replays keep it.

        Args:
            experiment_id: Step id of the choice; also the experiment name in `experiment_ref`.
            variants: Variant name to a callable taking no arguments; each must call step tools.
            select: A strategy from `inngest_django.experiment` (fixed, weighted, bucket, custom).

        Returns:
            The chosen variant's result, its name, and an `ExperimentRef` for `ctx.defer`.

        Raises:
            NonRetriableError: There are no variants, `select` is not a strategy, it chose a
                name that is not a variant, or the chosen variant called no step tools.
        """
        variant = self._choose(experiment_id, variants, select)
        calls_before = self._step.calls
        result = variants[variant]()
        return self._experiment_result(experiment_id, variant, result, calls_before)

    def _choose(self, experiment_id: str, variants: Any, select: Any) -> str:
        """Check the arguments, then choose a variant once per run (a step) and return it."""
        names = self._variant_names(experiment_id, variants)
        if not isinstance(select, Strategy):
            raise NonRetriableError(
                f"group.experiment({experiment_id!r}): select must be a strategy from "
                "inngest_django.experiment (fixed, weighted, bucket or custom), "
                f"got {select!r}"
            )

        def choose() -> str:
            chosen = select.select(self._run_id, names)
            return self._check_variant(experiment_id, chosen, names, "select() returned")

        # Step.run itself, also for an async handler's step: this part is sync.
        stored = Step.run(self._step, experiment_id, choose)
        # A memo written before a deploy may name a variant that has since been removed.
        return self._check_variant(experiment_id, stored, names, "the recorded choice is")

    def _experiment_result(
        self, experiment_id: str, variant: str, result: Any, calls_before: int
    ) -> ExperimentResult[Any]:
        if self._step.calls == calls_before:
            raise NonRetriableError(
                f"group.experiment({experiment_id!r}): variant {variant!r} did not call any "
                "step tools. Code outside steps runs again on every replay, so wrap the "
                "variant's work in ctx.step.run() (or another step tool)."
            )
        return ExperimentResult(
            result=result,
            variant=variant,
            experiment_ref=ExperimentRef(experiment_name=experiment_id, variant=variant),
        )

    def parallel(self, callables: Sequence[Callable[[], Any]]) -> tuple[Any, ...]:
        """Run the callables' steps side by side and return their results in order.

        Each round replays every branch up to its next step without a memo, then runs those
        steps at once (sync callables on a thread pool, each in its own transaction), until
        every branch has returned. A replay returns what finished and runs what did not; a
        failed step retries alone. A branch's error is raised once all branches have ended.
        """
        check_branches(callables, self._step)
        side_by_side = getattr(self._step.runner, "run_side_by_side", None)
        if side_by_side is None:
            # A runner without it (run_function's in-memory one) runs the branches in turn.
            return tuple(fn() for fn in callables)
        while True:
            before = self._step.snapshot()
            planned: list[PlannedStep] = []
            outcomes: list[tuple[bool, Any]] = []
            with self._step.planning(planned):
                for fn in callables:
                    outcomes.append(_outcome(fn))
            if not planned:
                return _results(outcomes)
            # The next round replays the branches from the top, giving their steps the same keys.
            self._step.restore(before)
            side_by_side(planned)

    @staticmethod
    def _variant_names(experiment_id: str, variants: Any) -> tuple[str, ...]:
        """Return the variant names, or raise unless `variants` maps names to callables."""
        if not isinstance(variants, Mapping):
            raise NonRetriableError(
                f"group.experiment({experiment_id!r}): variants must be a dict of variant "
                f"name to callable, got {type(variants).__name__}"
            )
        if not variants:
            raise NonRetriableError(
                f"group.experiment({experiment_id!r}) needs at least one variant"
            )
        for name, fn in variants.items():
            if not isinstance(name, str) or not name:
                raise NonRetriableError(
                    f"group.experiment({experiment_id!r}): variant names must be non-empty "
                    f"strings, got {name!r}"
                )
            if not callable(fn):
                raise NonRetriableError(
                    f"group.experiment({experiment_id!r}): variant {name!r} must be a callable "
                    f"taking no arguments, got {fn!r}"
                )
        return tuple(variants)

    @staticmethod
    def _check_variant(experiment_id: str, chosen: Any, names: Sequence[str], source: str) -> str:
        """Return `chosen` if it names a variant, or raise naming the valid ones."""
        if not isinstance(chosen, str) or chosen not in names:
            raise NonRetriableError(
                f"group.experiment({experiment_id!r}): {source} {chosen!r}, which is not a "
                f"variant; the variants are {', '.join(map(repr, names))}"
            )
        return chosen


def check_branches(callables: Any, step: Step) -> None:
    """Raise unless `callables` is a list or tuple of callables within the step limit."""
    if not isinstance(callables, list | tuple) or not all(callable(c) for c in callables):
        raise NonRetriableError(
            "group.parallel takes a list or tuple of callables taking no arguments, "
            f"got {callables!r}"
        )
    if len(callables) > step.max_steps:
        raise NonRetriableError(
            f"group.parallel got {len(callables)} callables; a run has at most "
            f"{step.max_steps} steps (MAX_STEPS_PER_RUN)"
        )


def _outcome(fn: Callable[[], Any]) -> tuple[bool, Any]:
    """Return (True, result) or (False, error) for a branch; None result if it planned a step."""
    try:
        return True, fn()
    except StepPlanned:
        return True, None
    except Interrupt:
        raise
    except Exception as exc:
        return False, exc


def _results(outcomes: list[tuple[bool, Any]]) -> tuple[Any, ...]:
    """Return the branches' results in order, or raise the first branch's error."""
    for ok, value in outcomes:
        if not ok:
            raise value
    return tuple(value for _, value in outcomes)
