"""When to try a failed step again: Inngest's backoff table, jitter and RetryAfterError bounds."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.utils import timezone

from .exceptions import NonRetriableError, RetryAfterError, StepError

# Seconds to wait after the n-th failed attempt (0-based); the last entry repeats.
BACKOFF_SECONDS = (15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200)
MAX_JITTER_SECONDS = 30.0
MIN_RETRY_AFTER = timedelta(seconds=1)
MAX_RETRY_AFTER = timedelta(hours=24)


def backoff_delay(attempt: int, *, scale: float = 1.0) -> timedelta:
    """Return the wait after failed attempt `attempt`, jitter included, times `scale`."""
    base = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
    jitter = random.uniform(0.0, MAX_JITTER_SECONDS)
    return timedelta(seconds=(base + jitter) * scale)


def retry_after_at(retry_after: timedelta | int | datetime, now: datetime) -> datetime:
    """Return when a RetryAfterError asks to retry, clamped to 1 s .. 24 h from `now`."""
    if isinstance(retry_after, datetime):
        if timezone.is_naive(retry_after):
            retry_after = timezone.make_aware(retry_after, timezone.get_current_timezone())
        delay = retry_after - now
    elif isinstance(retry_after, timedelta):
        delay = retry_after
    elif isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        delay = timedelta(milliseconds=retry_after)
    else:
        delay = MIN_RETRY_AFTER
    return now + min(max(delay, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def is_final(exc: BaseException, attempt: int, retries: int) -> bool:
    """Return True if failed attempt `attempt` (0-based) ends the step or handler for good."""
    return isinstance(exc, NonRetriableError | StepError) or attempt >= retries


def next_attempt_at(
    exc: BaseException, attempt: int, *, retries: int, now: datetime, scale: float = 1.0
) -> datetime | None:
    """Return when to try again after failed attempt `attempt`, or None if the failure is final."""
    if is_final(exc, attempt, retries):
        return None
    if isinstance(exc, RetryAfterError):
        return retry_after_at(exc.retry_after, now)
    return now + backoff_delay(attempt, scale=scale)
