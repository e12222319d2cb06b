"""URLs for tests: the admin, the Event API at the root and the REST API."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/inngest/", include("inngest_django.api.urls")),
    # The official Python client posts to /e/<key> at the host root.
    path("", include("inngest_django.api.event_urls")),
    # Prometheus scrapes /metrics at the host root.
    path("", include("inngest_django.prometheus.urls")),
]
