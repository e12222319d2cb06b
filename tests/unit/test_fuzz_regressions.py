"""Bugs the fuzz tests (tests/fuzz) found in pure code, each pinned by a plain example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inngest_django.durations import parse_duration, parse_until
from inngest_django.expressions import MAX_EXPRESSION_LENGTH, Expression, InvalidExpressionError
from inngest_django.serialization import OutputNotSerializableError, dump_value, error_to_json

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", [10**20, "9" * 400 + "s", "99999999999d"])
def test_a_duration_too_large_for_a_timedelta_is_a_value_error_not_an_overflow(value):
    with pytest.raises(ValueError, match=r"^sleep 'nap' duration .* is too large for a timedelta"):
        parse_duration(value, what="sleep 'nap' duration")


def test_digits_of_other_scripts_are_not_durations():
    # U+0661 is ARABIC-INDIC DIGIT ONE: `\d` matched it and float() read it as 1.
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("\u0661s")


def test_a_duration_error_quotes_the_value_as_given():
    with pytest.raises(ValueError, match="'1H 30M' is not a duration"):
        parse_duration("1H 30M")


@pytest.mark.parametrize("value", ["2026-02-30T00:00:00Z", "2026-02-01T16:30:00+99:00"])
def test_an_impossible_datetime_is_refused_with_what_was_parsed(value):
    with pytest.raises(ValueError, match=f"^sleep_until 'nap' time '{value[:10]}.* is not a valid"):
        parse_until(value, what="sleep_until 'nap' time")


def test_an_expression_too_long_for_the_evaluator_is_refused_not_a_segfault():
    # Some 20,000 chained operators overflow the CEL library's native stack and kill the
    # process; run in a child so that, were it to come back, only this test fails.
    program = (
        "from inngest_django.expressions import Expression, InvalidExpressionError\n"
        "try:\n"
        "    Expression('1' + '+1' * 30_000).evaluate({})\n"
        "except InvalidExpressionError as exc:\n"
        "    print('refused:', exc)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    assert f"longer than {MAX_EXPRESSION_LENGTH} characters" in child.stdout


def test_an_expression_at_the_length_limit_still_compiles_and_runs():
    source = "1" + "+1" * ((MAX_EXPRESSION_LENGTH - 1) // 2)
    assert len(source) <= MAX_EXPRESSION_LENGTH
    assert Expression(source).evaluate({}) == (MAX_EXPRESSION_LENGTH + 1) // 2


def test_an_expression_that_is_not_text_is_an_invalid_expression():
    with pytest.raises(InvalidExpressionError):
        Expression(12)  # type: ignore[arg-type]


def test_keys_that_become_the_same_json_key_are_refused_not_merged():
    # json.dumps writes both as "1"; json.loads kept only the last, silently losing "a".
    with pytest.raises(OutputNotSerializableError, match="both become '1'"):
        dump_value({1: "a", "1": "b"})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\x00b", "NUL character"),
        ({"k\x00": 1}, "NUL character"),
        (["\ud800"], "lone surrogate"),
    ],
)
def test_text_no_database_can_store_is_refused_as_not_serializable(value, problem):
    with pytest.raises(OutputNotSerializableError, match=problem):
        dump_value(value)


def test_astral_characters_still_store_unchanged():
    assert dump_value({"emoji": "😀", "escaped": "\\u0000"})[0] == {
        "emoji": "😀",
        "escaped": "\\u0000",
    }


class MessageFails(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


def test_an_error_whose_str_fails_is_still_recorded():
    error = error_to_json(MessageFails())
    assert error["name"] == "MessageFails"
    assert error["message"] == "<MessageFails: str() failed>"


def test_an_error_message_with_nul_or_a_lone_surrogate_is_escaped_for_storage():
    error = error_to_json(ValueError("a\x00b\ud800"))
    assert error["message"] == "a\\x00b\\ud800"
    assert "\x00" not in error["stack"]
    error["stack"].encode()
