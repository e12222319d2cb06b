"""InngestTaskBackend: `django.tasks` enqueues that become runs of our worker."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from ... import clock
from ...conf import app_settings
from ...events import build_event_row, queued_run, save_runs
from ...exceptions import InvalidEventError
from ...models import FunctionRun
from ...names import MAX_NAME_LENGTH, matches_nothing
from ...registry import default_registry
from ...schemas.events import Event
from .framework import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    normalize_json,
    task_enqueued,
)
from .functions import TASK_EVENT, TaskFunction, function_id, load_task, split_function_id
from .results import stored_task, task_result

logger = logging.getLogger(__name__)

OPTIONS = ("RETRIES", "QUEUE_CONCURRENCY")


class InngestTaskBackend(BaseTaskBackend):
    """Run `@task` functions on `run_inngest_worker`, with retries, priority and results.

    Each enqueue stores one run in the caller's transaction: a rollback enqueues nothing.
    OPTIONS: RETRIES (retries after a failed attempt, default DEFAULT_RETRIES) and
    QUEUE_CONCURRENCY ({queue name: most tasks of that queue running at once}).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.retries, self.queue_concurrency = _parse_options(alias, self.queues, self.options)
        self._functions: dict[str, TaskFunction] = {}

    # -- the backend contract ------------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        """Check `task` as Django's contract says, and that its function id fits a column."""
        super().validate_task(task)
        fid = function_id(self.alias, task.module_path)
        if len(fid) > MAX_NAME_LENGTH:
            raise InvalidTask(
                f"Task {task.module_path!r} on backend {self.alias!r} has the function id {fid!r}, "
                f"longer than {MAX_NAME_LENGTH} characters; use a shorter module path or name."
            )

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
        """Store a run of `task` in the current transaction and return its READY result."""
        self.validate_task(task)
        # Django's own check: "Unsupported type" for arguments JSON cannot hold.
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        function = self.function_for(task)
        now = clock.now()
        data = {
            "task": task.module_path,
            "args": args,
            "kwargs": kwargs,
            "queue": task.queue_name,
            "priority": task.priority,
            "run_after": _aware(task.run_after).isoformat() if task.run_after else None,
        }
        try:
            event = build_event_row(Event(name=TASK_EVENT, data=data), 0, system=False)
        except InvalidEventError as exc:
            raise ValueError(
                f"Task {task.module_path!r} cannot be enqueued: its arguments are stored as an "
                f"event's data, and {exc}"
            ) from None
        # Born dispatched: this enqueue makes the one run; no trigger may match the event.
        event.dispatched_at = now
        run = queued_run(
            function.id, event, now=self._due(task, now), **self._queue_fields(task.queue_name)
        )
        with transaction.atomic():
            event.save(force_insert=True)
            save_runs([run])
        result = task_result(run, task, self.alias)
        # Announced at commit: an enqueue rolled back with its transaction never happened.
        transaction.on_commit(
            partial(task_enqueued.send, type(self), task_result=result), robust=True
        )
        logger.info(
            "Task enqueued run_id=%s task=%s backend=%s",
            run.pk,
            task.module_path,
            self.alias,
            extra={"run_id": run.pk, "function_id": function.id, "action": "task_enqueued"},
        )
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """Return the result of the task run `result_id`, or raise TaskResultDoesNotExist."""
        run = None
        if isinstance(result_id, str) and not matches_nothing(result_id):
            run = (
                FunctionRun.objects.select_related("event")
                .filter(pk=result_id, function_id__startswith=function_id(self.alias, ""))
                .first()
            )
        if run is None:
            raise TaskResultDoesNotExist(result_id)
        _, path = split_function_id(run.function_id)
        task = load_task(path, function_id=run.function_id)
        return task_result(run, stored_task(task, run.event.data, self.alias), self.alias)

    # -- the mapping -------------------------------------------------------------------------

    def function_for(self, task: Task) -> TaskFunction:
        """Return the registered function that runs `task` on this backend, registering it."""
        function = self._functions.get(task.module_path)
        if function is None:
            retries = app_settings.DEFAULT_RETRIES if self.retries is None else self.retries
            function = TaskFunction(backend=self, task=task, retries=retries)
            self._functions[task.module_path] = function
        # Every time: it replaces one built from older settings (the same id and handler).
        default_registry.register(function)
        return function

    def _due(self, task: Task, now: datetime) -> datetime:
        """Return the run's due time, before flow control moves it by the priority."""
        run_after = _aware(task.run_after) if task.run_after else None
        if run_after is None or run_after <= now:
            return now
        # Priority moves the due time earlier by `priority` seconds; never before run_after.
        return run_after + timedelta(seconds=max(task.priority, 0))

    def _queue_fields(self, queue: str) -> dict[str, Any]:
        limit = self.queue_concurrency.get(queue)
        if not limit:
            return {}
        return {
            "concurrency_key": f"queue:{self.alias}:{queue}"[:MAX_NAME_LENGTH],
            "concurrency_limit": limit,
        }


def _aware(moment: datetime) -> datetime:
    # With USE_TZ = False Django lets run_after be naive; the engine's times are aware.
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _parse_options(
    alias: str, queues: set[str], options: dict[str, Any]
) -> tuple[int | None, dict[str, int]]:
    """Return (RETRIES, QUEUE_CONCURRENCY) from a backend's OPTIONS, or raise naming the bad one."""
    where = f"TASKS[{alias!r}]['OPTIONS']"
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ImproperlyConfigured(
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; the valid keys are "
            f"{', '.join(OPTIONS)}"
        )
    retries = options.get("RETRIES")
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20
    ):
        raise ImproperlyConfigured(
            f"{where}['RETRIES'] must be an int from 0 to 20, not {retries!r}"
        )
    limits = options.get("QUEUE_CONCURRENCY") or {}
    if not isinstance(limits, dict):
        raise ImproperlyConfigured(f"{where}['QUEUE_CONCURRENCY'] must be a dict of queue: limit")
    for queue, limit in limits.items():
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ImproperlyConfigured(
                f"{where}['QUEUE_CONCURRENCY'][{queue!r}] must be an int of 1 or more, "
                f"not {limit!r}"
            )
        if queues and queue not in queues:
            raise ImproperlyConfigured(
                f"{where}['QUEUE_CONCURRENCY'] names the queue {queue!r}, which is not in "
                f"TASKS[{alias!r}]['QUEUES'] ({', '.join(sorted(queues))})"
            )
    return retries, dict(limits)
