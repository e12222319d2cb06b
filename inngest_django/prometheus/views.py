"""The /metrics view: Prometheus' text format, behind METRICS_TOKEN when it is set."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..conf import app_settings
from .collector import InngestCollector


def authorized(request: HttpRequest, token: str) -> bool:
    """Return True if the request carries `Authorization: Bearer <token>`."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Answer a scrape with the figures of this moment, or 401 without the right token."""
    token = app_settings.METRICS_TOKEN
    if token and not authorized(request, token):
        response = HttpResponse(
            "A bearer token is needed.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # A registry per scrape: nothing is shared between requests or with prometheus_client's
    # default registry, which a project may serve itself.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InngestCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
