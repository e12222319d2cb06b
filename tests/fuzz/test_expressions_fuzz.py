"""Fuzz CEL expressions: compile or InvalidExpressionError; evaluate or ValueError; identities."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from inngest_django.expressions import MAX_EXPRESSION_LENGTH, Expression, InvalidExpressionError

from .strategies import fuzz_settings, json_scalars, json_values, storable_text, text

# Pieces of CEL, so generated sources get past the lexer and reach the checker and evaluator.
TOKENS = [
    "event",
    "async",
    ".data",
    ".name",
    ".x",
    ".ts",
    "[0]",
    "['x']",
    " == ",
    " != ",
    " < ",
    " + ",
    " - ",
    " * ",
    " / ",
    " % ",
    " && ",
    " || ",
    " in ",
    "!",
    "-",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "?",
    "1",
    "0",
    "1.5",
    "9223372036854775807",
    "18446744073709551615u",
    "'a'",
    '"\\u0000"',
    "b'\\xff'",
    "true",
    "null",
    "size(",
    "has(",
    "int(",
    "string(",
    "double(",
    "dyn(",
    "timestamp(",
    "duration(",
    ".matches(",
    ".startsWith(",
    ".exists(x, ",
    ".all(x, ",
    ".map(x, ",
    "x",
]
CEL_ISH = st.lists(st.sampled_from(TOKENS), max_size=12).map("".join)
SOURCES = st.one_of(CEL_ISH, text(40))
EVENT_DATA = st.dictionaries(st.sampled_from(["x", "y", "name", ""]) | text(5), json_values())
# What ingestion stores (no lone surrogates, no NUL), which is all CEL sees in production.
STORED_DATA = st.dictionaries(
    st.sampled_from(["x", "y", "name", ""]) | storable_text(5), json_values(storable=True)
)


def variables(data: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": {"name": "fuzz/sent", "data": data, "id": "", "ts": 1},
        "async": {"name": "fuzz/other", "data": other, "id": "", "ts": 2},
    }


@fuzz_settings(250)
@given(source=SOURCES, data=EVENT_DATA, other=EVENT_DATA)
@example(source="'\ud800'", data={}, other={})
@example(source="1" + "+1" * 20_000, data={}, other={})
@example(source=12, data={}, other={})
def test_expressions_compile_or_refuse_and_evaluate_or_fail_cleanly(source, data, other):
    try:
        expression = Expression(source)
    except InvalidExpressionError as exc:
        assert repr(source)[:20] in str(exc) or len(source) > MAX_EXPRESSION_LENGTH
        return
    try:
        result = expression.evaluate(variables(data, other))
    except ValueError as exc:
        assert "CEL expression" in str(exc)
    else:
        assert expression.matches(variables(data, other)) is (result is True)


@fuzz_settings(300)
@given(value=json_scalars(storable=True), other=STORED_DATA)
def test_a_scalar_equals_itself(value, other):
    data = {"x": value}
    assert Expression("event.data.x == event.data.x").evaluate(variables(data, other)) is True
    assert Expression("event.data.x != event.data.x").evaluate(variables(data, {})) is False
    assert Expression("has(event.data.x)").matches(variables(data, {}))
    assert not Expression("has(event.data.missing)").matches(variables(data, {}))


@fuzz_settings(200)
@given(data=STORED_DATA, other=STORED_DATA)
def test_matching_is_total_and_boolean_identities_hold(data, other):
    bound = variables(data, other)
    assert Expression("true").matches(bound)
    assert not Expression("false").matches(bound)
    assert not Expression("event.data.missing == 1").matches(bound)
    # CEL's logical operators absorb an error when the other side decides the answer.
    assert Expression("event.data.missing || true").matches(bound)
    assert not Expression("event.data.missing && false").matches(bound)
    assert Expression(f"size(event.data) == {len(data)}").matches(bound)
