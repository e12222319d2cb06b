"""Step tools over memos, with a plain in-memory runner (no database)."""

from __future__ import annotations

from datetime import datetime

import pytest

import inngest_django as inngest
from inngest_django.steps import Memo, Step


class InMemoryRunner:
    """Runs step callables directly and records what it was asked to do."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.sleeps: list[tuple[str, datetime]] = []

    def run_step(self, step_key, fn, args, output_type, op="RUN"):
        self.ran.append(step_key)
        return fn(*args)

    def plan_sleep(self, step_key, until):
        self.sleeps.append((step_key, until))


def make_step(memos=None, max_steps=1000):
    runner = InMemoryRunner()
    return Step(dict(memos or {}), runner, max_steps=max_steps), runner


def test_step_run_returns_memo_without_calling_handler():
    step, runner = make_step({"load": Memo(status="COMPLETED", output={"id": 1})})
    assert step.run("load", lambda: pytest.fail("must not run")) == {"id": 1}
    assert runner.ran == []


def test_failed_memo_raises_step_error():
    error = {"name": "ValueError", "message": "nope", "stack": "trace"}
    step, _ = make_step({"charge": Memo(status="FAILED", error=error)})
    with pytest.raises(inngest.StepError) as info:
        step.run("charge", lambda: 1)
    assert (info.value.name, info.value.message, info.value.stack) == (
        "ValueError",
        "nope",
        "trace",
    )


def test_errored_memo_runs_the_step_again():
    step, runner = make_step({"flaky": Memo(status="ERRORED", attempts=1)})
    assert step.run("flaky", lambda x: x * 2, 21) == 42
    assert runner.ran == ["flaky"]


def test_repeated_ids_are_suffixed():
    step, runner = make_step()
    for _ in range(3):
        step.run("same", lambda: None)
    assert runner.ran == ["same", "same:1", "same:2"]


def test_nested_step_raises_non_retriable_error():
    step, _ = make_step()
    with pytest.raises(inngest.NonRetriableError, match="Nested steps"):
        step.run("outer", lambda: step.run("inner", lambda: 1))


def test_replaying_until_last_memo_is_reached():
    step, _ = make_step({"a": Memo(status="COMPLETED", output=1)})
    assert step.replaying
    step.run("a", lambda: None)
    assert not step.replaying


def test_step_limit_counts_memos_and_new_steps():
    step, runner = make_step({"a": Memo(status="COMPLETED")}, max_steps=2)
    step.run("a", lambda: None)
    step.run("b", lambda: None)
    with pytest.raises(inngest.NonRetriableError, match="limit of 2 steps"):
        step.run("c", lambda: None)
    assert runner.ran == ["b"]


def test_empty_step_id_is_refused():
    step, _ = make_step()
    with pytest.raises(inngest.NonRetriableError, match="step id"):
        step.run("", lambda: None)
