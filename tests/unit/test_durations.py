"""Duration and datetime parsing for sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inngest_django.durations import parse_duration, parse_until


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(seconds=3), timedelta(seconds=3)),
        (1500, timedelta(milliseconds=1500)),
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations_parse(value, expected):
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["", "soon", "1x", "h1", "1h 30m", True, 1.5, None, -1])
def test_bad_durations_raise_value_error(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_until_accepts_aware_datetimes_and_iso_strings():
    moment = datetime(2026, 2, 1, 16, 30, tzinfo=UTC)
    assert parse_until(moment) == moment
    assert parse_until("2026-02-01T16:30:00Z") == moment


@pytest.mark.parametrize("value", [datetime(2026, 2, 1), "2026-02-01T16:30:00", "tomorrow", 5])
def test_until_refuses_naive_or_unparseable_values(value):
    with pytest.raises(ValueError):
        parse_until(value)
