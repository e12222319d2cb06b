"""When an idle worker has work again: the next due run, cron tick, event or defer."""

from __future__ import annotations

import threading
from datetime import datetime

from django.db import DatabaseError, connection
from django.db.models import Min

from . import clock
from .enums import CLAIMABLE_STATUSES
from .models import CronSchedule, Event, FunctionRun
from .models.pauses import unpaused
from .outbox import has_unrelayed
from .registry import FunctionRegistry


def next_due_at(now: datetime) -> datetime | None:
    """Return when the next run becomes claimable (`now` if events or defers wait), or None."""
    if Event.objects.any_undispatched() or has_unrelayed():
        return now
    return (
        # A paused function's due runs are not work: they would keep the loop from sleeping.
        FunctionRun.objects.filter(unpaused(), status__in=CLAIMABLE_STATUSES)
        .order_by("available_at")
        .values_list("available_at", flat=True)
        .first()
    )


def next_work_after(looked_at: datetime, registry: FunctionRegistry) -> datetime | None:
    """Return when work becomes due after `looked_at` (a run or a cron tick), or None."""
    now = clock.now()
    moments = [next_due_at(now)]
    keys = [
        f"{function.id}|{trigger.cron}"
        for function in registry.with_cron()
        for trigger in function.cron_triggers
    ]
    if keys:
        moments.append(
            CronSchedule.objects.filter(key__in=keys).aggregate(Min("next_tick_at"))[
                "next_tick_at__min"
            ]
        )
    # Due before the round looked and still there: held back by flow control or taken by
    # another worker a moment ago. Waking for it at once would spin; the usual wait stands.
    return min((m for m in moments if m is not None and m > looked_at), default=None)


# How often an idle worker on SQLite asks whether another connection has committed.
COMMIT_CHECK_SECONDS = 0.01


def wait_for_commits(wake: threading.Event, seconds: float) -> None:
    """Wait up to `seconds` for `wake`, or (SQLite) for another connection to commit.

    SQLite has no LISTEN: an idle worker polls, backing off to POLL_INTERVAL_SECONDS, and a run
    sent then waited for the next poll. `PRAGMA data_version` changes when another connection
    commits and costs no lock or table read, so the worker looks again at once instead.
    """
    if connection.vendor != "sqlite":
        wake.wait(seconds)
        return
    deadline = clock.monotonic() + seconds
    try:
        version = _data_version()
        while (remaining := deadline - clock.monotonic()) > 0:
            if wake.wait(min(remaining, COMMIT_CHECK_SECONDS)) or _data_version() != version:
                return
    except DatabaseError:
        return  # the next round meets the error, and the loop's backoff handles it


def _data_version() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA data_version")
        return cursor.fetchone()[0]
