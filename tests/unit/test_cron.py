"""Cron strings and their next ticks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inngest_django.cron import CronSpec, InvalidCronError


def test_next_tick_in_utc():
    spec = CronSpec("*/15 * * * *")
    assert spec.next_after(datetime(2026, 1, 1, 10, 7, tzinfo=UTC)) == datetime(
        2026, 1, 1, 10, 15, tzinfo=UTC
    )


def test_next_tick_is_strictly_after_the_moment():
    spec = CronSpec("0 * * * *")
    tick = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert spec.next_after(tick) == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)


def test_tz_prefix_sets_the_zone():
    spec = CronSpec("TZ=Europe/Paris 0 9 * * *")
    # 09:00 in Paris in January is 08:00 UTC.
    tick = spec.next_after(datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
    assert tick.astimezone(UTC) == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "* * * *", "* * * * * *", "a b c d e", "TZ=Nowhere/X * * * * *"]
)
def test_invalid_cron_strings_are_refused(text):
    with pytest.raises(InvalidCronError):
        CronSpec(text)
