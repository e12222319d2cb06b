"""App config: SQLite pragmas, and discovery of every `inngest_functions` module."""

from __future__ import annotations

import importlib
from typing import Any

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.signals import connection_created
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


def _configure_sqlite(sender: Any, connection: Any, **kwargs: Any) -> None:
    from .conf import app_settings

    if connection.vendor != "sqlite":
        return
    if app_settings.SQLITE_WRITE_QUEUE:
        from .sqlite_write_queue import install

        install(connection, app_settings.SQLITE_BUSY_TIMEOUT_SECONDS)
    if not app_settings.SQLITE_WAL:
        return
    with connection.cursor() as cursor:
        # WAL lets readers work beside the one writer; the busy timeout makes writers queue.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(
            f"PRAGMA busy_timeout={int(app_settings.SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}"
        )


class InngestDjangoConfig(AppConfig):
    name = "inngest_django"
    verbose_name = _("Inngest durable functions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .conf import app_settings

        connection_created.connect(_configure_sqlite, dispatch_uid="inngest_django_sqlite")
        autodiscover_modules("inngest_functions")
        for module in app_settings.FUNCTION_MODULES:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"INNGEST_DJANGO['FUNCTION_MODULES'] names {module!r}, which cannot be "
                    f"imported: {exc}"
                ) from exc
        _install_task_source()


def _install_task_source() -> None:
    """Register django tasks' functions on first use, if TASKS names our backend."""
    from django.conf import settings

    if not getattr(settings, "TASKS", None):
        return
    try:
        from .backends.tasks import source
    except ImproperlyConfigured:
        return  # no tasks framework: the backend reports it when TASKS loads it
    if source.uses_task_backend():
        source.install()
