"""Django's tasks framework: `django.tasks` on Django 6, the `django_tasks` package before it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

try:
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json  # type: ignore[attr-defined,unused-ignore]

    FRAMEWORK = "django.tasks"
except ImportError:
    try:
        from django_tasks import (  # type: ignore[no-redef]
            TaskContext,
            TaskResult,
            TaskResultStatus,
            task,
            task_backends,
        )
        from django_tasks.backends.base import BaseTaskBackend  # type: ignore[no-redef]
        from django_tasks.base import Task, TaskError  # type: ignore[no-redef]
        from django_tasks.exceptions import InvalidTaskError as InvalidTask  # type: ignore
        from django_tasks.exceptions import TaskResultDoesNotExist  # type: ignore[no-redef]
        from django_tasks.signals import (  # type: ignore[no-redef]
            task_enqueued,
            task_finished,
            task_started,
        )
        from django_tasks.utils import normalize_json  # type: ignore[no-redef]
    except ImportError as exc:
        raise ImproperlyConfigured(
            "inngest_django.backends.tasks needs Django's tasks framework: Django 6 has it "
            "(django.tasks); on Django 5.2 pip install 'inngest-django[tasks]' (the django-tasks "
            f"package) and add 'django_tasks' to INSTALLED_APPS. ({exc})"
        ) from exc

    FRAMEWORK = "django_tasks"

__all__ = [
    "FRAMEWORK",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "normalize_json",
    "set_field",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]


def set_field(frozen: Any, name: str, value: Any) -> None:
    """Set a field of a frozen TaskResult, as Django's own backends do."""
    object.__setattr__(frozen, name, value)
