"""Hypothesis strategies, settings and a JSON comparison shared by the fuzz tests."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# CI runs a fixed, small sample; raise it locally to search longer (INNGEST_DJANGO_FUZZ_SCALE=20).
SCALE = max(1, int(os.environ.get("INNGEST_DJANGO_FUZZ_SCALE", "1")))
# Fixed inputs in CI, so a run is reproducible; INNGEST_DJANGO_FUZZ_RANDOM=1 explores new ones.
RANDOM = os.environ.get("INNGEST_DJANGO_FUZZ_RANDOM", "") not in ("", "0")

# Characters the database or the encoders treat specially, mixed into generated text.
AWKWARD_CHARACTERS = [
    "\x00",
    "\ud800",
    "\udfff",
    "\ufeff",
    "\u2028",
    "\x7f",
    "\\",
    '"',
    "'",
    "\n",
    "é",
    "😀",
    "\U0010ffff",
]


def fuzz_settings(max_examples: int) -> settings:
    """Return bounded, reproducible settings; the function-scoped fixtures are shared on purpose."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def text(max_size: int = 20) -> st.SearchStrategy[str]:
    """Return any text, surrogates, NUL and other awkward characters included."""
    return st.text(
        st.one_of(st.characters(exclude_categories=()), st.sampled_from(AWKWARD_CHARACTERS)),
        max_size=max_size,
    )


def storable_text(max_size: int = 20) -> st.SearchStrategy[str]:
    """Return text a database can store: no NUL, no lone surrogate (ingestion refuses those)."""
    return st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
        | st.sampled_from([c for c in AWKWARD_CHARACTERS if c not in ("\x00", "\ud800", "\udfff")]),
        max_size=max_size,
    )


def json_scalars(*, storable: bool = False) -> st.SearchStrategy[Any]:
    """Return JSON scalars: huge integers, extreme floats (NaN and infinities unless storable)."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**300]),
        st.floats(allow_nan=not storable, allow_infinity=not storable),
        storable_text() if storable else text(),
    )


def json_values(max_leaves: int = 20, *, storable: bool = False) -> st.SearchStrategy[Any]:
    """Return nested JSON values: arrays and objects of scalars."""
    keys = storable_text(10) if storable else text(10)
    return st.recursive(
        json_scalars(storable=storable),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def nested(depth: int, leaf: Any = 1) -> Any:
    """Return `leaf` wrapped in `depth` alternating lists and objects."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def json_equal(sent: Any, stored: Any) -> bool:
    """Return True if two JSON values are the same JSON: numbers compare as numbers."""
    # PostgreSQL's jsonb keeps numbers as decimals: 1e23 comes back as the integer 10**23.
    if isinstance(sent, bool) or isinstance(stored, bool):
        return sent is stored
    if isinstance(sent, int) and isinstance(stored, int):
        return sent == stored
    if isinstance(sent, int | float) and isinstance(stored, int | float):
        return float(sent) == float(stored)
    if isinstance(sent, list) and isinstance(stored, list):
        return len(sent) == len(stored) and all(map(json_equal, sent, stored))
    if isinstance(sent, dict) and isinstance(stored, dict):
        return sent.keys() == stored.keys() and all(json_equal(sent[k], stored[k]) for k in sent)
    return type(sent) is type(stored) and sent == stored
