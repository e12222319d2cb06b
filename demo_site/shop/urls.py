"""Shop URLs (filled in by the demo)."""

from __future__ import annotations

urlpatterns: list = []
