"""The Event API's URL, `e/<event_key>`: mount it at the site root for the official clients."""

from __future__ import annotations

from django.urls import URLPattern, path

from .event_api import event_api_alias_view, event_api_view

urlpatterns: list[URLPattern] = [
    path("e/<str:event_key>", event_api_view, name="inngest-event-api"),
    path("e/<str:event_key>/", event_api_alias_view),
    # Routed so that a request without a key gets the JSON 401 clients expect, not a 404 page.
    path("e/", event_api_alias_view),
    path("e", event_api_alias_view),
]
