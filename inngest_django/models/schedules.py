"""CronSchedule: the next tick of each cron trigger."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..names import MAX_NAME_LENGTH


class CronSchedule(models.Model):
    """The next tick of one cron trigger, advanced by compare-and-set so each tick fires once."""

    key = models.CharField(_("key"), max_length=512, unique=True)
    function_id = models.CharField(_("function"), max_length=MAX_NAME_LENGTH)
    cron = models.CharField(_("cron"), max_length=300)
    next_tick_at = models.DateTimeField(_("next tick at"))
    last_tick_at = models.DateTimeField(_("last tick at"), null=True, blank=True)

    class Meta:
        verbose_name = _("cron schedule")
        verbose_name_plural = _("cron schedules")

    def __str__(self) -> str:
        return f"{self.function_id}: {self.cron}"

    @classmethod
    def advance(cls, key: str, *, expected_tick: datetime, next_tick: datetime) -> bool:
        """Move the schedule from `expected_tick` to `next_tick`; False if another worker did."""
        return bool(
            cls.objects.filter(key=key, next_tick_at=expected_tick).update(
                next_tick_at=next_tick, last_tick_at=expected_tick
            )
        )
