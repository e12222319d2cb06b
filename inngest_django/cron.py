"""Cron strings: 5 fields with an optional `TZ=Area/City ` prefix, and their next ticks."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

MAX_CRON_LENGTH = 255


class InvalidCronError(ValueError):
    """A cron string does not parse."""


class CronSpec:
    """A parsed cron string that tells its next tick after a moment."""

    def __init__(self, source: str) -> None:
        self.source = source
        text = source.strip()
        if len(text) > MAX_CRON_LENGTH:
            raise InvalidCronError(f"cron {source!r} is longer than {MAX_CRON_LENGTH} characters")
        self.zone = ZoneInfo("UTC")
        for prefix in ("TZ=", "CRON_TZ="):
            if text.startswith(prefix):
                zone_name, _, text = text[len(prefix) :].partition(" ")
                try:
                    self.zone = ZoneInfo(zone_name)
                except (ZoneInfoNotFoundError, ValueError) as exc:
                    raise InvalidCronError(
                        f"cron {source!r} names an unknown time zone {zone_name!r}"
                    ) from exc
        self.expression = text.strip()
        if len(self.expression.split()) != 5:
            raise InvalidCronError(
                f"cron {source!r} must have 5 fields (minute hour day month weekday)"
            )
        if not croniter.is_valid(self.expression):
            raise InvalidCronError(f"cron {source!r} is not a valid cron expression")

    def next_after(self, moment: datetime) -> datetime:
        """Return the first tick strictly after `moment`, as an aware datetime."""
        local = moment.astimezone(self.zone)
        return croniter(self.expression, local).get_next(datetime)
