"""The app's admins; importing the modules registers them with the default admin site."""

from __future__ import annotations

from . import cron, defers, event_keys, events, flow, runs, workers

__all__ = ["cron", "defers", "event_keys", "events", "flow", "runs", "workers"]
