"""Pruner: retention from the worker loop, one batch a round, one worker per interval."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from .conf import app_settings
from .models import CronSchedule
from .retention import PruneReport, configured_older_than, iter_prune

# The prune's own logger: logging set up for retention covers the worker's prunes too.
logger = logging.getLogger("inngest_django.retention")

# The CronSchedule row whose compare-and-set hands each prune interval to one worker.
SCHEDULE_KEY = "inngest/prune"


class Pruner:
    """Prunes from the worker loop: one batch a round, one worker per PRUNE_INTERVAL_SECONDS."""

    def __init__(self) -> None:
        self._batches: Iterator[dict[str, int]] | None = None
        self._report: PruneReport | None = None
        self._next_check: datetime | None = None
        # The schedule's next tick as this worker last set it, while its prune is under way.
        self._tick: datetime | None = None

    def maybe_prune(self, now: datetime) -> int:
        """Delete one batch if a prune is under way or due and won; return the rows deleted.

        Never raises: a failed prune is logged and tried again the next interval.
        """
        try:
            older_than = configured_older_than()
            if older_than is None:
                return 0
            if self._batches is None:
                if self._next_check is not None and now < self._next_check:
                    return 0
                if not self._claim_interval(now):
                    return 0
                self._report = PruneReport(cutoff=now - older_than)
                self._batches = iter_prune(
                    older_than, batch_size=app_settings.PRUNE_BATCH_SIZE, now=now
                )
                logger.info(
                    "Prune started older_than=%s",
                    older_than,
                    extra={"action": "prune_started"},
                )
            elif not self._hold(now):
                logger.warning(
                    "Prune stopped: another worker took the schedule over",
                    extra={"action": "prune_taken_over"},
                )
                self._batches = self._report = None
                return 0
            counts = next(self._batches, None)
            if counts is None:
                self._finish()
                return 0
            assert self._report is not None
            self._report.add(counts)
            # Counted as work even when a batch deleted nothing, so the loop comes straight back.
            return max(sum(counts.values()), 1)
        except Exception:
            logger.exception("Prune failed; the next interval tries again")
            self._batches = self._report = None
            return 0

    def _finish(self) -> None:
        report, self._batches, self._report = self._report, None, None
        if report is None:
            return
        deleted = " ".join(f"{name}={count}" for name, count in report.counts.items())
        logger.info(
            "Prune finished cutoff=%s %s",
            report.cutoff.isoformat(),
            deleted,
            extra={"action": "prune_finished", "counts": report.counts},
        )

    def _hold(self, now: datetime) -> bool:
        """Keep the schedule ahead of a prune still under way; False if another worker won it."""
        interval = timedelta(seconds=app_settings.PRUNE_INTERVAL_SECONDS)
        # Moved on half an interval early, so no other worker finds the prune due meanwhile.
        if self._tick is None or now < self._tick - interval / 2:
            return True
        with transaction.atomic():
            held = CronSchedule.advance(
                SCHEDULE_KEY, expected_tick=self._tick, next_tick=now + interval
            )
        self._tick = self._next_check = now + interval if held else None
        return held

    def _claim_interval(self, now: datetime) -> bool:
        """Return True if this worker takes the prune due now; move the schedule on by CAS."""
        interval = timedelta(seconds=app_settings.PRUNE_INTERVAL_SECONDS)
        schedule = CronSchedule.objects.filter(key=SCHEDULE_KEY).first()
        if schedule is None:
            try:
                with transaction.atomic():
                    CronSchedule.objects.create(
                        key=SCHEDULE_KEY,
                        function_id=SCHEDULE_KEY,
                        cron=f"every {interval.total_seconds():g} s",
                        next_tick_at=now + interval,
                        last_tick_at=now,
                    )
            except IntegrityError:
                schedule = CronSchedule.objects.get(key=SCHEDULE_KEY)
            else:
                self._tick = self._next_check = now + interval
                return True
        # A next tick more than two intervals off was set under a longer interval: due now.
        # Two, not one: a worker whose `now` was read a moment before the winner's (a lock wait,
        # clock skew) sees the winner's tick slightly more than one interval off.
        if schedule.next_tick_at <= now + 2 * interval and now < schedule.next_tick_at:
            self._next_check = schedule.next_tick_at
            self._log_not_due(schedule.next_tick_at)
            return False
        with transaction.atomic():
            # Compare-and-set: of the workers that see this tick due, exactly one moves it on.
            won = CronSchedule.advance(
                SCHEDULE_KEY, expected_tick=schedule.next_tick_at, next_tick=now + interval
            )
        self._next_check = now + interval
        self._tick = self._next_check if won else None
        if not won:
            self._log_not_due(self._next_check)
        return won

    def _log_not_due(self, at: datetime) -> None:
        # Once per interval: the next look is not before `at`.
        logger.debug(
            "Prune not due here; next look at %s",
            at.isoformat(),
            extra={"action": "prune_not_due"},
        )
