"""Backoff table, jitter and RetryAfterError bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inngest_django.retries import BACKOFF_SECONDS, backoff_delay, retry_after_at

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_backoff_follows_inngest_table_with_up_to_30s_jitter():
    assert BACKOFF_SECONDS[:4] == (15, 30, 60, 120)
    for attempt, base in enumerate(BACKOFF_SECONDS):
        delay = backoff_delay(attempt).total_seconds()
        assert base <= delay <= base + 30
    assert backoff_delay(50).total_seconds() >= 7200


def test_backoff_scale_shrinks_delays():
    assert backoff_delay(0, scale=0.001) <= timedelta(seconds=0.045)


def test_retry_after_accepts_timedelta_ms_and_datetime_and_is_clamped():
    assert retry_after_at(timedelta(minutes=5), NOW) == NOW + timedelta(minutes=5)
    assert retry_after_at(2500, NOW) == NOW + timedelta(milliseconds=2500)
    assert retry_after_at(NOW + timedelta(hours=2), NOW) == NOW + timedelta(hours=2)
    assert retry_after_at(0, NOW) == NOW + timedelta(seconds=1)
    assert retry_after_at(timedelta(days=3), NOW) == NOW + timedelta(hours=24)
