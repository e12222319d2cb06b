"""The Prometheus endpoint: the metrics page's figures as gauges, computed on each scrape."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

try:
    import prometheus_client  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImproperlyConfigured(
        "inngest_django.prometheus needs prometheus-client: "
        "pip install 'inngest-django[prometheus]'."
    ) from exc
