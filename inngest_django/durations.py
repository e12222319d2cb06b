"""Parse durations given as timedelta, int milliseconds or strings such as "1h30m"."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

MAX_SLEEP = timedelta(days=366)

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
# ASCII digits only: `\d` alone also takes other scripts' digits, such as "\u0661" (Arabic-Indic 1).
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", re.ASCII)


def parse_duration(value: timedelta | int | str, *, what: str = "duration") -> timedelta:
    """Return `value` as a timedelta, or raise ValueError naming what was wrong."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a timedelta, int milliseconds or a string like '30s'")
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int):
        result = _milliseconds(value, what)
    elif isinstance(value, str):
        result = _parse_string(value, what)
    else:
        raise ValueError(
            f"{what} must be a timedelta, int milliseconds or a string like '30s', "
            f"not {type(value).__name__}"
        )
    if result < timedelta(0):
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return result


def _milliseconds(value: int, what: str) -> timedelta:
    try:
        return timedelta(milliseconds=value)
    except OverflowError:
        raise ValueError(f"{what} {value!r} ms is too large for a timedelta") from None


def _parse_string(value: str, what: str) -> timedelta:
    text = value.strip().lower()
    if not text:
        raise ValueError(f"{what} is an empty string")
    position, total = 0, timedelta(0)
    try:
        for match in _PART.finditer(text):
            if match.start() != position:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            position = match.end()
    except OverflowError:
        # float("9" * 400) is infinite, and a finite one can still pass timedelta.max.
        raise ValueError(f"{what} {value!r} is too large for a timedelta") from None
    if position != len(text):
        raise ValueError(
            f"{what} {value!r} is not a duration; use units ms, s, m, h, d, w as in '1h30m'"
        )
    return total


def parse_until(value: datetime | str, *, what: str = "until") -> datetime:
    """Return `value` as an aware datetime, or raise ValueError."""
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError as exc:
            # Well-formed but impossible, such as February 30th or an offset of 99 hours.
            raise ValueError(f"{what} {value!r} is not a valid datetime: {exc}") from None
        if parsed is None:
            raise ValueError(f"{what} {value!r} is not an ISO 8601 datetime")
        value = parsed
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be an aware datetime or an ISO 8601 string")
    if not timezone.is_aware(value):
        raise ValueError(f"{what} {value.isoformat()} has no time zone; pass an aware datetime")
    return value
