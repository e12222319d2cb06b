"""The Prometheus endpoint's URL, `metrics`: include it at the site root for `/metrics`."""

from __future__ import annotations

from django.urls import URLPattern, path

from .views import metrics_view

urlpatterns: list[URLPattern] = [path("metrics", metrics_view, name="inngest-metrics")]
