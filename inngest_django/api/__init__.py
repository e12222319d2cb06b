"""DRF edges: the Inngest-compatible Event API and the REST API for runs, events and functions."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

try:
    import rest_framework  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImproperlyConfigured(
        "inngest_django.api needs Django REST framework: pip install 'inngest-django[api]' "
        "and add 'rest_framework' to INSTALLED_APPS."
    ) from exc
