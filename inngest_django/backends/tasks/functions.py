"""Each django task as a registered function: its id, its handler, and loading it by path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from ...context import Context
from ...exceptions import FunctionNotFoundError, InngestDjangoError, NonRetriableError
from ...functions import Function
from ...models import FunctionRun
from ...schemas.config import Priority, TriggerCron, TriggerEvent
from .framework import InvalidTask, Task, TaskContext, normalize_json, task_started
from .results import stored_task, task_result

if TYPE_CHECKING:
    from .framework import BaseTaskBackend

logger = logging.getLogger(__name__)

# Function ids are "django-task:<backend alias>:<task module path>".
APP_ID = "django"
PREFIX = f"{APP_ID}-task:"
# The event each enqueue stores (dispatched already): the task's arguments and options.
TASK_EVENT = "django/task.enqueued"
# Inngest's priority: a run is queued as if enqueued this many seconds earlier (later if < 0).
PRIORITY = Priority(run="event.data.priority")


class TaskNotFoundError(FunctionNotFoundError):
    """A run's django task cannot be loaded in this process."""

    def __init__(self, function_id: str, reason: str) -> None:
        InngestDjangoError.__init__(self, f"Django task {function_id!r} cannot run: {reason}")
        self.function_id = function_id


def function_id(alias: str, path: str) -> str:
    """Return the id of the function that runs the task at `path` on backend `alias`."""
    return f"{PREFIX}{alias}:{path}"


def split_function_id(function_id: str) -> tuple[str, str]:
    """Return (backend alias, task path) of a task function's id."""
    # Module paths hold no colon; an alias might.
    alias, _, path = function_id.removeprefix(PREFIX).rpartition(":")
    return alias, path


def load_task(path: str, *, function_id: str) -> Task:
    """Import the task at `path`, or raise TaskNotFoundError saying why it cannot be."""
    try:
        found = import_string(path)
    except Exception as exc:
        # ImportError for a missing module or name; anything the module raised as it loaded.
        reason = f"{path!r} cannot be imported ({type(exc).__name__}: {exc})"
        raise TaskNotFoundError(function_id, reason) from exc
    if not isinstance(found, Task):
        reason = f"{path!r} is a {type(found).__name__}, not a task; decorate it with @task"
        raise TaskNotFoundError(function_id, reason)
    return found


class TaskFunction(Function):
    """A django task as a function: no trigger, started only by its backend's enqueue."""

    # The task's body is user code outside any step, however long it runs.
    shares_commit_groups = False

    def __init__(self, *, backend: BaseTaskBackend, task: Task, retries: int) -> None:
        self.task = task
        self.alias = backend.alias
        self.backend_class = type(backend)
        super().__init__(
            app_id=APP_ID,
            fn_id=f"task:{backend.alias}:{task.module_path}",
            handler=_handler(task, backend),
            triggers=(),
            name=task.module_path,
            retries=retries,
            flow={"priority": PRIORITY},
        )

    def __repr__(self) -> str:
        return f"<TaskFunction {self.id}>"

    def _check_triggers(self, triggers: Any) -> list[TriggerEvent | TriggerCron]:
        return []


def _handler(task: Task, backend: BaseTaskBackend) -> Callable[[Context], Any]:
    alias, sender = backend.alias, type(backend)

    def handle(ctx: Context) -> Any:
        data = ctx.event.data
        try:
            enqueued = stored_task(task, data, alias)
        except InvalidTask as exc:
            # Say a queue left QUEUES since the task was enqueued: no retry changes that.
            raise NonRetriableError(f"Task {task.module_path!r} is invalid here: {exc}") from exc
        args, kwargs = data.get("args", []), data.get("kwargs", {})
        context = None
        if enqueued.takes_context or task_started.has_listeners(sender):
            run = FunctionRun.objects.select_related("event").get(pk=ctx.run_id)
            result = task_result(run, enqueued, alias)
            context = TaskContext(task_result=result)
            for receiver, error in task_started.send_robust(sender, task_result=result):
                if isinstance(error, Exception):
                    logger.error(
                        "task_started receiver %r failed run_id=%s: %s",
                        receiver,
                        ctx.run_id,
                        error,
                        extra={"run_id": ctx.run_id, "action": "task_signal_failed"},
                    )
        if enqueued.takes_context:
            value = enqueued.call(context, *args, **kwargs)
        else:
            value = enqueued.call(*args, **kwargs)
        try:
            return normalize_json(value)
        except (TypeError, ValueError) as exc:
            raise NonRetriableError(
                f"Task {task.module_path!r} returned a value that is not JSON: {exc}"
            ) from exc

    # The function's qualified name (the admin shows it) is the task's own.
    handle.__module__ = task.func.__module__
    handle.__qualname__ = task.func.__qualname__
    return handle
