"""Cron ticks: each due tick of each cron trigger starts exactly one run across all workers."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction

from . import clock
from .cron import CronSpec
from .events import emit, queued_run, save_runs
from .functions import SCHEDULED_EVENT, Function
from .models import CronSchedule, is_paused
from .registry import FunctionRegistry, default_registry

logger = logging.getLogger(__name__)


class CronScheduler:
    """Fires due cron ticks; remembers each trigger's next tick to skip needless queries."""

    def __init__(self, registry: FunctionRegistry = default_registry) -> None:
        self.registry = registry
        self._next_tick: dict[str, datetime] = {}

    def fire_due(self) -> int:
        """Start one run for each cron tick that is due now; return how many started."""
        now = clock.now()
        fired = 0
        for function in self.registry.with_cron():
            for trigger in function.cron_triggers:
                key = f"{function.id}|{trigger.cron}"
                cached = self._next_tick.get(key)
                if cached is not None and now < cached:
                    continue
                fired += self._fire(function, trigger.cron, key, now)
        return fired

    def _fire(self, function: Function, cron: str, key: str, now: datetime) -> int:
        spec = CronSpec(cron)
        schedule = CronSchedule.objects.filter(key=key).first()
        if schedule is None:
            # First sight of this trigger: wait for its next tick rather than firing a past one.
            self._next_tick[key] = self._create(function, cron, key, spec.next_after(now))
            return 0
        if now < schedule.next_tick_at:
            self._next_tick[key] = schedule.next_tick_at
            return 0
        next_tick = spec.next_after(now)
        with transaction.atomic():
            # Compare-and-set: of all workers seeing this due tick, exactly one moves it on.
            won = CronSchedule.advance(
                key, expected_tick=schedule.next_tick_at, next_tick=next_tick
            )
            # A paused function's ticks pass by: the schedule moves on, no run starts.
            won = won and not is_paused(function.id)
            if won:
                # The tick's event goes to this function only, so it is born dispatched.
                event = emit(SCHEDULED_EVENT, {"cron": cron}, dispatched_at=now)
                run = queued_run(function.id, event, now=now)
                save_runs([run], registry=self.registry)
        self._next_tick[key] = next_tick
        if won:
            logger.info(
                "Cron tick fired function_id=%s cron=%r tick=%s run_id=%s",
                function.id,
                cron,
                schedule.next_tick_at.isoformat(),
                run.pk,
                extra={"function_id": function.id, "run_id": run.pk, "action": "cron_fired"},
            )
        return int(won)

    def _create(self, function: Function, cron: str, key: str, next_tick: datetime) -> datetime:
        try:
            with transaction.atomic():
                CronSchedule.objects.create(
                    key=key, function_id=function.id, cron=cron, next_tick_at=next_tick
                )
            return next_tick
        except IntegrityError:
            return CronSchedule.objects.get(key=key).next_tick_at
