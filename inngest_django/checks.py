"""System checks: settings that would break the engine at run time."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report an invalid INNGEST_DJANGO dict as inngest_django.E001."""
    from .conf import app_settings

    try:
        app_settings.reload()
        _ = app_settings.EXECUTOR
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="Fix the INNGEST_DJANGO setting; see the settings table in the README.",
                id="inngest_django.E001",
            )
        ]
    return []
