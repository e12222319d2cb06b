"""django.tasks `@task` functions the tasks backend's tests enqueue and workers run."""

from __future__ import annotations

import os
import time

from django.utils import timezone

from inngest_django.backends.tasks.framework import TaskContext, task

from .models import Call


@task
def add(a: int, b: int) -> int:
    """Return the sum: the plain round trip."""
    return a + b


@task
async def add_async(a: int, b: int) -> int:
    """Return the sum from a coroutine."""
    return a + b


@task
def fail(message: str) -> None:
    """Fail every attempt, with a ValueError."""
    raise ValueError(message)


@task(takes_context=True)
def flaky(context: TaskContext, succeed_on: int) -> dict:
    """Fail until attempt `succeed_on`, then return what the context said."""
    if context.attempt < succeed_on:
        raise RuntimeError(f"attempt {context.attempt} fails")
    return {"attempt": context.attempt, "result_id": context.task_result.id}


@task
def record(name: str, seconds: float = 0.0) -> str:
    """Write a Call row when it starts and another when it ends, `seconds` later."""
    Call.objects.create(run_id=name, name="start", pid=os.getpid())
    time.sleep(seconds)
    Call.objects.create(run_id=name, name="end", pid=os.getpid())
    return name


@task
def returns_a_datetime() -> object:
    """Return a value JSON cannot hold."""
    return timezone.now()


def not_a_task() -> None:
    """A plain function: a run naming it fails with a clear error."""


@task
def note_transaction(name: str) -> None:
    """Record whether the task's body ran inside a transaction (a commit group's, say)."""
    from django.db import connection

    state = "in-transaction" if connection.in_atomic_block else "autocommit"
    Call.objects.create(run_id=name, name=state, pid=os.getpid())
