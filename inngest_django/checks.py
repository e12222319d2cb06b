"""System checks: settings that would break the engine, or the REST API's docs page, at run time."""

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


@checks.register()
def check_executor(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report EXECUTOR="django_q" without django_q installed as inngest_django.E002."""
    from django.apps import apps

    from .conf import app_settings

    try:
        executor = app_settings.EXECUTOR
    except ImproperlyConfigured:
        return []  # check_settings reports it as E001
    if executor != "django_q" or apps.is_installed("django_q"):
        return []
    return [
        checks.Error(
            "EXECUTOR is 'django_q' but django_q is not installed",
            hint="Add 'django_q' to INSTALLED_APPS (pip install django-q2) and run "
            "manage.py qcluster, or set INNGEST_DJANGO['EXECUTOR'] = 'worker'.",
            id="inngest_django.E002",
        )
    ]


@checks.register()
def check_functions_registered(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when no function is registered (inngest_django.W003)."""
    from .registry import default_registry

    # A function source (the django.tasks backend) counts: its functions register on first use.
    if default_registry:
        return []
    return [
        checks.Warning(
            "No inngest_django functions are registered; a worker started now dispatches no "
            "events and claims no runs",
            hint="Declare functions in an inngest_functions.py module of an installed app "
            "(the app imports it at startup, as the admin does admin.py).",
            id="inngest_django.W003",
        )
    ]


@checks.register(checks.Tags.urls)
def check_swagger_ui_assets(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when the REST API is mounted without drf_spectacular_sidecar (inngest_django.W002)."""
    from django.apps import apps
    from django.conf import settings
    from django.urls import NoReverseMatch, reverse

    # A worker-only project (no ROOT_URLCONF) serves no pages at all.
    if apps.is_installed("drf_spectacular_sidecar") or not getattr(settings, "ROOT_URLCONF", None):
        return []
    try:
        reverse("inngest_api:docs")
    except (NoReverseMatch, ImportError):
        # Not mounted, or a urlconf that does not import, which Django's own checks report.
        return []
    return [
        checks.Warning(
            "The REST API is mounted but drf_spectacular_sidecar is not installed; its Swagger "
            "UI page (docs/) then loads its script and styles from drf-spectacular's "
            "SWAGGER_UI_DIST, a CDN by default, and is blank offline",
            hint="pip install 'inngest-django[api]' and add 'drf_spectacular_sidecar' to "
            "INSTALLED_APPS.",
            id="inngest_django.W002",
        )
    ]


@checks.register(checks.Tags.database)
def check_sqlite_transaction_mode(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn when SQLite runs without IMMEDIATE transactions (inngest_django.W001)."""
    from django.conf import settings

    return sqlite_transaction_warnings(settings.DATABASES)


def sqlite_transaction_warnings(databases: dict[str, Any]) -> list[checks.CheckMessage]:
    """Return one W001 warning per SQLite database without IMMEDIATE transactions."""
    warnings = []
    for alias, settings_dict in databases.items():
        if "sqlite" not in settings_dict.get("ENGINE", ""):
            continue
        mode = str(settings_dict.get("OPTIONS", {}).get("transaction_mode", "")).upper()
        if mode != "IMMEDIATE":
            warnings.append(
                checks.Warning(
                    f"SQLite database {alias!r} does not use IMMEDIATE transactions; each step "
                    "then needs an extra write to take the lock, and your own transactions may "
                    "fail with 'database is locked' beside a worker",
                    hint=f"Set DATABASES[{alias!r}]['OPTIONS']['transaction_mode'] = 'IMMEDIATE'.",
                    id="inngest_django.W001",
                )
            )
    return warnings
