"""The worker's side: task functions registered on first use, and task_finished after a run."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ...models import FunctionRun
from ...registry import FunctionRegistry, default_registry
from ...signals import run_finished
from .backend import InngestTaskBackend
from .framework import task_backends, task_finished
from .functions import PREFIX, TaskFunction, TaskNotFoundError, load_task, split_function_id
from .results import stored_task, task_result

logger = logging.getLogger(__name__)


class TaskSource:
    """Registers the function of a task run's id by importing the task, as a worker claims it.

    The worker is authoritative: it builds the function from its own TASKS settings and its
    own import of the task, whatever the process that enqueued it had.
    """

    prefix = PREFIX

    def resolve(self, function_id: str) -> TaskFunction:
        """Return the task's function, or raise TaskNotFoundError (the run then fails)."""
        alias, path = split_function_id(function_id)
        backend = _backend(alias)
        if backend is None:
            reason = f"TASKS has no InngestTaskBackend named {alias!r} in this process"
            raise TaskNotFoundError(function_id, reason)
        return backend.function_for(load_task(path, function_id=function_id))

    def limits_concurrency(self) -> bool:
        """Return True if a backend limits a queue's concurrency (claims then count keys)."""
        return any(backend.queue_concurrency for backend in _backends())


def _backend(alias: str) -> InngestTaskBackend | None:
    try:
        backend = task_backends[alias]
    except ImproperlyConfigured:
        return None
    return backend if isinstance(backend, InngestTaskBackend) else None


def _backends() -> list[InngestTaskBackend]:
    found = (_backend(alias) for alias in _configured())
    return [backend for backend in found if backend is not None]


def _configured() -> dict[str, Any]:
    configured = getattr(settings, "TASKS", None)
    return configured if isinstance(configured, dict) else {}


def uses_task_backend() -> bool:
    """Return True if a backend in the TASKS setting is an InngestTaskBackend."""
    for params in _configured().values():
        try:
            backend_class = import_string(params["BACKEND"])
        except (ImportError, KeyError, TypeError):
            continue  # Django's tasks framework reports a bad BACKEND itself
        if isinstance(backend_class, type) and issubclass(backend_class, InngestTaskBackend):
            return True
    return False


def install(registry: FunctionRegistry = default_registry) -> None:
    """Let `registry` register task functions on first use, and send task_finished."""
    registry.add_source(TaskSource())
    run_finished.connect(announce_finished, sender=FunctionRun, dispatch_uid=__name__)


def announce_finished(sender: Any, run: FunctionRun, **kwargs: Any) -> None:
    """Send Django's task_finished for a task's run that has just finished."""
    if not run.function_id.startswith(PREFIX):
        return
    try:
        function = default_registry.get(run.function_id)
    except TaskNotFoundError:
        return  # the run failed for that very reason, and its log says so
    if not isinstance(function, TaskFunction):
        return
    try:
        task = stored_task(function.task, run.event.data, function.alias)
        result = task_result(run, task, function.alias)
    except Exception:
        # Sent after the run's finish committed: nothing here may undo or fail it.
        logger.exception("task_finished not sent run_id=%s", run.pk, extra={"run_id": run.pk})
        return
    for receiver, error in task_finished.send_robust(function.backend_class, task_result=result):
        if isinstance(error, Exception):
            logger.error(
                "task_finished receiver %r failed run_id=%s: %s",
                receiver,
                run.pk,
                error,
                extra={"run_id": run.pk, "action": "task_signal_failed"},
            )
