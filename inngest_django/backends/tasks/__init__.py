"""A `django.tasks` backend: `@task` functions run as functions of our worker.

Settings: TASKS = {"default": {"BACKEND": "inngest_django.backends.tasks.InngestTaskBackend"}}.
See docs/django-tasks.md.
"""

from __future__ import annotations

from .backend import InngestTaskBackend

__all__ = ["InngestTaskBackend"]
