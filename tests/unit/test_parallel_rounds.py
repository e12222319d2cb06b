"""group.parallel's rounds over Step: plan each branch's next step, run the round, replay."""

from __future__ import annotations

import pytest

from inngest_django.exceptions import NonRetriableError, StepError
from inngest_django.group import Group
from inngest_django.steps import Memo, Step


class RoundRunner:
    """Runs each round's planned steps at once (here in order) and stores their memos."""

    def __init__(self, memos: dict[str, Memo], failing: frozenset[str] = frozenset()) -> None:
        self.memos = memos
        self.rounds: list[list[str]] = []
        self.failing = failing

    def run_step(self, step_key, fn, args, output_type, op="RUN"):
        raise AssertionError(f"{step_key} ran outside a round")

    def run_side_by_side(self, planned) -> None:
        self.rounds.append([step.key for step in planned])
        for step in planned:
            if step.key in self.failing:
                self.memos[step.key] = Memo("FAILED", error={"name": "E", "message": step.key})
            else:
                self.memos[step.key] = Memo("COMPLETED", output=step.fn(*step.args))


def make(failing=frozenset()):
    memos: dict[str, Memo] = {}
    runner = RoundRunner(memos, failing)
    step = Step(memos, runner, max_steps=1000)
    return Group(step, "run-1"), step, runner


def test_each_round_runs_every_branch_next_step_and_results_keep_their_order():
    group, step, runner = make()

    def branch(name: str) -> str:
        first = step.run(f"{name}-1", lambda: name)
        return step.run(f"{name}-2", lambda: first + "!")

    results = group.parallel([lambda: branch("a"), lambda: branch("b"), lambda: branch("c")])
    assert results == ("a!", "b!", "c!")
    assert runner.rounds == [["a-1", "b-1", "c-1"], ["a-2", "b-2", "c-2"]]
    # The step counts are those of one pass through the branches, not of every round.
    assert step.calls == 6


def test_repeated_step_ids_get_the_same_keys_in_every_round():
    group, step, runner = make()
    group.parallel([lambda: step.run("fetch", lambda: 1), lambda: step.run("fetch", lambda: 2)])
    assert runner.rounds == [["fetch", "fetch:1"]]
    assert runner.memos["fetch"].output == 1
    assert runner.memos["fetch:1"].output == 2


def test_a_branch_that_failed_for_good_raises_after_the_others_have_run():
    group, step, runner = make(failing=frozenset({"b"}))
    with pytest.raises(StepError):
        group.parallel([lambda: step.run("a", lambda: 1), lambda: step.run("b", lambda: 2)])
    assert runner.memos["a"].status == "COMPLETED"


def test_more_callables_than_the_step_limit_fail_the_run():
    memos: dict[str, Memo] = {}
    step = Step(memos, RoundRunner(memos), max_steps=2)
    with pytest.raises(NonRetriableError, match="MAX_STEPS_PER_RUN"):
        Group(step, "run-1").parallel([lambda: None] * 3)
