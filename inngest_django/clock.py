"""The one place the engine reads the time or sleeps, so tests can patch both."""

from __future__ import annotations

import time
from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    """Return the current aware UTC datetime."""
    return timezone.now()


def sleep(seconds: float) -> None:
    """Block the calling thread for `seconds`."""
    if seconds > 0:
        time.sleep(seconds)


def monotonic() -> float:
    """Return a monotonic clock reading in seconds."""
    return time.monotonic()
