"""REST API URLs, to mount under a prefix the project chooses, such as `api/inngest/`."""

from __future__ import annotations

urlpatterns: list = []
