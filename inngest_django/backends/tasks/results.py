"""A task run as Django's TaskResult: status, times, attempts, errors and return value."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...enums import FINISHED_STATUSES, RunStatus
from ...models import FunctionRun
from .framework import Task, TaskError, TaskResult, TaskResultStatus, set_field

# SLEEPING and WAITING never happen to a task's run (its handler has no steps); READY if they did.
STATUSES = {
    RunStatus.QUEUED: TaskResultStatus.READY,
    RunStatus.SLEEPING: TaskResultStatus.READY,
    RunStatus.WAITING: TaskResultStatus.READY,
    RunStatus.RUNNING: TaskResultStatus.RUNNING,
    RunStatus.COMPLETED: TaskResultStatus.SUCCESSFUL,
    RunStatus.FAILED: TaskResultStatus.FAILED,
    RunStatus.CANCELLED: TaskResultStatus.FAILED,
    RunStatus.SKIPPED: TaskResultStatus.FAILED,
}
_TRACEBACK = "Traceback (most recent call last):"


def stored_task(task: Task, data: Mapping[str, Any], alias: str) -> Task:
    """Return `task` with the options it was enqueued with, as its event data holds them."""
    run_after = data.get("run_after")
    return task.using(
        priority=int(data.get("priority", task.priority)),
        queue_name=str(data.get("queue", task.queue_name)),
        run_after=datetime.fromisoformat(run_after) if run_after else None,
        backend=alias,
    )


def attempts(run: FunctionRun) -> int:
    """Return how many times the task has started (or, cancelled, how often it had)."""
    # `attempt` counts failed attempts; the attempt running now, or the one that ended the
    # run, adds one. A cancel ends a run that is not executing: nothing more ran.
    if run.status == RunStatus.RUNNING or run.status in (RunStatus.COMPLETED, RunStatus.FAILED):
        return run.attempt + 1
    return run.attempt


def task_result(run: FunctionRun, task: Task, alias: str) -> TaskResult:
    """Return the TaskResult of a task's run (its `event` loaded)."""
    data = run.event.data
    count = attempts(run)
    status = STATUSES[RunStatus(run.status)]
    result = TaskResult(
        task=task,
        id=run.pk,
        status=status,
        enqueued_at=run.created_at,
        started_at=run.started_at if count else None,
        finished_at=run.finished_at if run.status in FINISHED_STATUSES else None,
        # When a retried attempt began is not stored: only a first attempt's start is known.
        last_attempted_at=run.started_at if count == 1 else None,
        args=data.get("args", []),
        kwargs=data.get("kwargs", {}),
        backend=alias,
        errors=[task_error(run.error)] if run.error else [],
        worker_ids=_worker_ids(run, count),
    )
    if status == TaskResultStatus.SUCCESSFUL:
        set_field(result, "_return_value", run.output)
    return result


def _worker_ids(run: FunctionRun, count: int) -> list[str]:
    # One per attempt, so `attempts` is right; only the holder of a running attempt is known.
    ids = [""] * count
    if count and run.status == RunStatus.RUNNING:
        ids[-1] = run.locked_by
    return ids


def task_error(error: Mapping[str, Any]) -> TaskError:
    """Return a run's stored error (name, message, stack) as a TaskError."""
    stack = str(error.get("stack") or "")
    return TaskError(
        exception_class_path=exception_class_path(str(error.get("name") or "Exception"), stack),
        traceback=stack,
    )


def exception_class_path(name: str, stack: str) -> str:
    """Return the dotted path of the exception a stack ends with, whose class is `name`."""
    lines = stack.splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith(_TRACEBACK)]
    if starts:
        # After the last traceback's indented frames, the exception's own line: "module.Class:
        # message", or "Class: message" for builtins (as traceback.format_exception writes it).
        for line in lines[starts[-1] + 1 :]:
            if line and not line[0].isspace():
                head = line.split(":", 1)[0].strip()
                if head == name or head.endswith(f".{name}"):
                    return head if "." in head else _unqualified(head)
                break
    return _unqualified(name)


def _unqualified(name: str) -> str:
    return f"builtins.{name}" if isinstance(getattr(builtins, name, None), type) else name
