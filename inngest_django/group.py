"""`ctx.group`: tools that coordinate steps (parallel, experiments); works over Step only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .exceptions import NonRetriableError
from .experiment import Strategy
from .schemas.defers import ExperimentRef
from .steps import Step

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

        stored = self._step.run(experiment_id, choose)
        # A memo written before a deploy may name a variant that has since been removed.
        variant = self._check_variant(experiment_id, stored, names, "the recorded choice is")

        calls_before = self._step.calls
        result = variants[variant]()
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
        """Run each callable's steps and return their results in order.

        The callables run one after another in this worker, each step memoized on its own, so
        a replay returns what finished and carries on with what did not. A step that fails
        surfaces as it would outside `parallel`.
        """
        if not isinstance(callables, list | tuple) or not all(callable(c) for c in callables):
            raise NonRetriableError(
                "group.parallel takes a list or tuple of callables taking no arguments, "
                f"got {callables!r}"
            )
        return tuple(fn() for fn in callables)

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
