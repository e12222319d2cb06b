"""The admin's time formats: moments to the millisecond, spans, relative times, axis ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from inngest_django.admin.times import (
    clock_text,
    duration_text,
    moment_html,
    moment_text,
    offset_text,
    relative_text,
    span_text,
    tick_step_ms,
    ticks,
)

MOMENT = datetime(2024, 5, 1, 10, 0, 3, 42_517, tzinfo=UTC)


def test_moment_text_shows_milliseconds_in_the_current_time_zone():
    assert moment_text(MOMENT) == "2024-05-01 10:00:03.042"
    with timezone.override("Europe/Paris"):
        assert moment_text(MOMENT) == "2024-05-01 12:00:03.042"
    assert moment_text(None) == ""
    assert clock_text(MOMENT) == "10:00:03.042"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 ms"),
        (0.0124, "12 ms"),
        (0.9994, "999 ms"),
        (1.5, "1.5 s"),
        (3.456, "3.46 s"),
        (12.44, "12.4 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (3600, "1 h"),
        (7800, "2 h 10 min"),
        (86400 * 3 + 3600 * 4, "3 d 4 h"),
    ],
)
def test_span_text_picks_a_unit_for_each_size(seconds, text):
    assert span_text(seconds) == text


def test_duration_text_is_empty_without_both_ends():
    assert duration_text(MOMENT, None) is None
    assert duration_text(MOMENT, MOMENT + timedelta(milliseconds=250)) == "250 ms"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=12), "in 12 s"),
        (timedelta(seconds=-12), "12 s ago"),
        (timedelta(minutes=-3, seconds=-10), "3 min ago"),
        (timedelta(milliseconds=450), "in 450 ms"),
        (timedelta(hours=5), "in 5 h"),
        (timedelta(days=-3), "3 d ago"),
        (timedelta(0), "now"),
    ],
)
def test_relative_text_says_in_or_ago(delta, text):
    assert relative_text(MOMENT + delta, MOMENT) == text


def test_offsets_and_ticks_land_on_round_milliseconds():
    assert offset_text(0) == "+0 ms"
    assert offset_text(250) == "+250 ms"
    assert offset_text(1500) == "+1.5 s"
    assert tick_step_ms(timedelta(milliseconds=900)) == 200
    marks = ticks(timedelta(milliseconds=900))
    assert [label for _, label in marks] == ["+0 ms", "+200 ms", "+400 ms", "+600 ms", "+800 ms"]
    assert marks[1][0] == pytest.approx(22.222, abs=0.001)
    # Long runs get minute and hour steps, never more than eight marks.
    assert len(ticks(timedelta(hours=5))) <= 9
    assert ticks(timedelta(hours=5))[1][1] == "+1 h"


def test_moment_html_carries_the_exact_moment_and_the_relative_time():
    html = moment_html(MOMENT)
    assert 'datetime="2024-05-01T10:00:03.042517+00:00"' in html
    assert ">2024-05-01 10:00:03.042</time>" in html
    assert moment_html(None) is None
