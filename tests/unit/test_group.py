"""ctx.group.experiment over Step with an in-memory runner (no database)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

import inngest_django as inngest
from inngest_django import experiment
from inngest_django.group import ExperimentResult, Group
from inngest_django.steps import Memo, Step


class InMemoryRunner:
    """Runs step callables directly and records which step keys ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run_step(self, step_key, fn, args, output_type, op="RUN"):
        self.ran.append(step_key)
        return fn(*args)

    def plan_sleep(self, step_key, until):
        raise AssertionError("no sleeps expected")


class RecordingStrategy(experiment.Strategy):
    """Returns a set name and records each call."""

    kind = "recording"

    def __init__(self, choice: str) -> None:
        self.choice = choice
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def select(self, run_id: str, variant_names: Sequence[str]) -> str:
        self.calls.append((run_id, tuple(variant_names)))
        return self.choice


def make_group(memos=None, run_id="run-1"):
    runner = InMemoryRunner()
    step = Step(dict(memos or {}), runner, max_steps=1000)
    return Group(step, run_id), step, runner


def variants_for(step):
    return {
        "control": lambda: step.run("old-checkout", lambda: "old"),
        "new": lambda: step.run("new-checkout", lambda: "new"),
    }


def test_experiment_runs_the_chosen_variant_as_normal_steps():
    group, step, runner = make_group()
    outcome = group.experiment(
        "checkout", variants=variants_for(step), select=experiment.fixed("new")
    )
    assert isinstance(outcome, ExperimentResult)
    assert (outcome.result, outcome.variant) == ("new", "new")
    assert runner.ran == ["checkout", "new-checkout"]


def test_experiment_ref_names_the_experiment_and_variant():
    group, step, _ = make_group()
    outcome = group.experiment(
        "checkout", variants=variants_for(step), select=experiment.fixed("control")
    )
    assert outcome.experiment_ref == inngest.ExperimentRef(
        experiment_name="checkout", variant="control"
    )


def test_experiment_result_is_frozen():
    group, step, _ = make_group()
    outcome = group.experiment(
        "checkout", variants=variants_for(step), select=experiment.fixed("control")
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.variant = "new"


def test_select_gets_the_run_id_and_variant_names():
    group, step, _ = make_group(run_id="run-42")
    strategy = RecordingStrategy("new")
    group.experiment("checkout", variants=variants_for(step), select=strategy)
    assert strategy.calls == [("run-42", ("control", "new"))]


@pytest.mark.parametrize("run_id", ["run-1", "run-2", "run-3", "run-4", "run-5", "run-6"])
def test_weighted_choice_hashes_the_group_run_id(run_id):
    group, step, _ = make_group(run_id=run_id)
    strategy = experiment.weighted({"control": 1, "new": 3})
    outcome = group.experiment("checkout", variants=variants_for(step), select=strategy)
    assert outcome.variant == strategy.select(run_id, ["control", "new"])


def test_memoized_choice_is_reused_without_calling_select():
    memos = {"checkout": Memo(status="COMPLETED", output="control")}
    group, step, runner = make_group(memos)
    strategy = RecordingStrategy("new")
    outcome = group.experiment("checkout", variants=variants_for(step), select=strategy)
    assert (outcome.variant, outcome.result) == ("control", "old")
    assert strategy.calls == []
    assert runner.ran == ["old-checkout"]


def test_replayed_variant_steps_still_count_as_step_tools():
    memos = {
        "checkout": Memo(status="COMPLETED", output="new"),
        "new-checkout": Memo(status="COMPLETED", output="stored"),
    }
    group, step, runner = make_group(memos)
    outcome = group.experiment(
        "checkout", variants=variants_for(step), select=experiment.fixed("control")
    )
    assert (outcome.variant, outcome.result) == ("new", "stored")
    assert runner.ran == []


def test_select_returning_an_unknown_variant_is_non_retriable():
    group, step, _ = make_group()
    with pytest.raises(inngest.NonRetriableError) as info:
        group.experiment("checkout", variants=variants_for(step), select=experiment.fixed("beta"))
    assert "'beta'" in info.value.message
    assert "'control', 'new'" in info.value.message


def test_custom_select_returning_a_non_string_is_non_retriable():
    group, step, _ = make_group()
    with pytest.raises(inngest.NonRetriableError, match="not a variant"):
        group.experiment(
            "checkout", variants=variants_for(step), select=experiment.custom(lambda: None)
        )


def test_memo_naming_a_removed_variant_is_non_retriable():
    memos = {"checkout": Memo(status="COMPLETED", output="retired")}
    group, step, _ = make_group(memos)
    with pytest.raises(inngest.NonRetriableError, match="'retired'"):
        group.experiment(
            "checkout", variants=variants_for(step), select=experiment.fixed("control")
        )


def test_zero_variants_is_refused_before_any_step():
    group, _, runner = make_group()
    with pytest.raises(inngest.NonRetriableError, match="at least one variant"):
        group.experiment("checkout", variants={}, select=experiment.fixed("a"))
    assert runner.ran == []


def test_variant_that_is_not_callable_is_refused():
    group, _, _ = make_group()
    with pytest.raises(inngest.NonRetriableError, match="callable"):
        group.experiment("checkout", variants={"a": "nope"}, select=experiment.fixed("a"))


def test_select_must_be_a_strategy():
    group, step, _ = make_group()
    with pytest.raises(inngest.NonRetriableError, match="strategy"):
        group.experiment("checkout", variants=variants_for(step), select=lambda: "new")


def test_variant_without_step_tools_is_non_retriable():
    group, _, _ = make_group()
    with pytest.raises(inngest.NonRetriableError, match="did not call any step tools"):
        group.experiment(
            "checkout", variants={"plain": lambda: 42}, select=experiment.fixed("plain")
        )


def test_select_runs_inside_the_memoized_step():
    group, step, _ = make_group()

    def sneaky():
        return step.run("inside-select", lambda: "new")

    with pytest.raises(inngest.NonRetriableError, match="Nested steps"):
        group.experiment("checkout", variants=variants_for(step), select=experiment.custom(sneaky))


def test_repeated_experiment_id_gets_a_suffixed_step_key_but_keeps_its_name():
    group, step, runner = make_group()
    first = group.experiment(
        "checkout", variants=variants_for(step), select=experiment.fixed("new")
    )
    second = group.experiment(
        "checkout", variants=variants_for(step), select=experiment.fixed("new")
    )
    assert runner.ran == ["checkout", "new-checkout", "checkout:1", "new-checkout:1"]
    assert first.experiment_ref == second.experiment_ref
