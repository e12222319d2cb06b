"""The Event API's URL, `e/<event_key>`: mount it at the site root for the official clients."""

from __future__ import annotations

urlpatterns: list = []
