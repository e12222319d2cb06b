"""Fuzz duration and datetime parsing: a timedelta (or aware datetime), or a clear ValueError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from inngest_django.durations import parse_duration, parse_until

from .strategies import fuzz_settings, json_scalars, text

UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
# Strings built from the duration grammar's own pieces, so many of them parse.
DURATION_ISH = st.lists(
    st.sampled_from(["1", "30", "0", "1.5", ".5", "99999999999", "9" * 400, *UNITS, " ", "x"]),
    max_size=8,
).map("".join)
ANY_VALUE = st.one_of(
    text(),
    DURATION_ISH,
    json_scalars(),
    st.timedeltas(),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.lists(st.integers(), max_size=2),
)


def check_error(exc: Exception, what: str) -> None:
    """A refusal is a ValueError (or TypeError) whose message names what was being parsed."""
    assert isinstance(exc, ValueError | TypeError), repr(exc)
    assert str(exc).startswith(what), str(exc)


@fuzz_settings(300)
@given(value=ANY_VALUE)
@example(value=10**20)
@example(value="9" * 400 + "s")
@example(value="99999999999d")
@example(value="\u0661s")
def test_parse_duration_returns_a_timedelta_or_a_clear_value_error(value: Any):
    try:
        result = parse_duration(value, what="sleep 'nap' duration")
    except Exception as exc:
        check_error(exc, "sleep 'nap' duration")
        return
    assert isinstance(result, timedelta)
    assert result >= timedelta(0)
    if isinstance(value, timedelta):
        assert result == value
    if isinstance(value, int):
        assert result == timedelta(milliseconds=value)


@fuzz_settings(200)
@given(
    parts=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(list(UNITS))),
        min_size=1,
        max_size=6,
    ),
    upper=st.booleans(),
    padding=st.sampled_from(["", " ", "\t", "\n "]),
)
def test_compound_durations_add_up_their_parts(parts, upper, padding):
    source = "".join(f"{amount}{unit}" for amount, unit in parts)
    expected = sum((amount * UNITS[unit] for amount, unit in parts), timedelta(0))
    source = source.upper() if upper else source
    assert parse_duration(padding + source + padding) == expected


@fuzz_settings(200)
@given(delta=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10_000)))
def test_a_duration_written_in_units_parses_back(delta: timedelta):
    # Written the way SEMANTICS.md's serializer writes one: largest units first, as in "1h30m".
    remaining, words = delta, []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        count, remaining = divmod(remaining, UNITS[unit])
        if count:
            words.append(f"{count}{unit}")
    # What is left is under a millisecond, which no unit writes: it is dropped.
    whole_ms = delta - remaining
    assert parse_duration("".join(words) or "0s") == whole_ms
    assert parse_duration(whole_ms // timedelta(milliseconds=1)) == whole_ms


@fuzz_settings(300)
@given(value=st.one_of(ANY_VALUE, st.datetimes().map(datetime.isoformat)))
@example(value="2026-02-30T00:00:00Z")
@example(value="2026-02-01T16:30:00+99:00")
def test_parse_until_returns_an_aware_datetime_or_a_clear_value_error(value: Any):
    try:
        result = parse_until(value, what="sleep_until 'nap' time")
    except Exception as exc:
        check_error(exc, "sleep_until 'nap' time")
        return
    assert isinstance(result, datetime)
    assert result.utcoffset() is not None


@fuzz_settings(200)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_aware_datetimes_round_trip_through_iso_8601(moment: datetime, offset_minutes: int):
    moment = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert parse_until(moment) == moment
    assert parse_until(moment.isoformat()) == moment


@pytest.mark.parametrize("value", [datetime(2026, 2, 1), "2026-02-01T16:30:00"])
def test_naive_datetimes_are_refused_by_name(value):
    with pytest.raises(ValueError, match="has no time zone"):
        parse_until(value)
