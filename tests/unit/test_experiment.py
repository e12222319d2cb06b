"""Experiment selection strategies: hashing, weights and validation."""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import pytest

from inngest_django import experiment


def expected_variant(key: str, weights: dict[str, float]) -> str:
    """Apply the SHA-256 bucket rule with exact fractions, independently of the module."""
    point = Fraction(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16), 2**32)
    total = sum(Fraction(w) for w in weights.values())
    edge = Fraction(0)
    for name in sorted(weights):
        edge += Fraction(weights[name]) / total
        if point < edge:
            return name
    raise AssertionError("point fell outside every bucket")


RUN_IDS = [f"run-{n}" for n in range(1, 7)] + ["01JABCDEF", "9f1c2e34-5a6b-4c7d-8e9f-0a1b2c3d4e5f"]


# Hash points: run-1 0.306, run-2 0.726, run-3 0.080, run-4 0.242, run-5 0.352, run-6 0.160.
@pytest.mark.parametrize(
    ("run_id", "variant"),
    [
        ("run-1", "new"),
        ("run-2", "new"),
        ("run-3", "control"),
        ("run-4", "control"),
        ("run-5", "new"),
        ("run-6", "control"),
    ],
)
def test_weighted_matches_known_sha256_buckets(run_id, variant):
    strategy = experiment.weighted({"new": 3, "control": 1})
    assert strategy.select(run_id, ["control", "new"]) == variant


@pytest.mark.parametrize("run_id", RUN_IDS)
@pytest.mark.parametrize(
    "weights",
    [{"a": 1, "b": 1}, {"b": 80, "a": 20}, {"x": 1, "y": 2, "z": 3}, {"only": 0.5}],
)
def test_weighted_follows_the_sha256_rule(run_id, weights):
    assert experiment.weighted(weights).select(run_id, list(weights)) == expected_variant(
        run_id, weights
    )


def test_weighted_sorts_names_so_weight_order_does_not_matter():
    forward = experiment.weighted({"a": 1, "b": 2, "c": 3})
    backward = experiment.weighted({"c": 3, "b": 2, "a": 1})
    for run_id in RUN_IDS:
        assert forward.select(run_id, []) == backward.select(run_id, [])


def test_weighted_never_chooses_a_zero_weight_variant():
    strategy = experiment.weighted({"a": 0, "b": 1, "c": 0})
    assert {strategy.select(f"run-{n}", ["a", "b", "c"]) for n in range(200)} == {"b"}


def test_weighted_spreads_runs_roughly_by_weight():
    strategy = experiment.weighted({"a": 1, "b": 3})
    chosen = [strategy.select(f"run-{n}", ["a", "b"]) for n in range(4000)]
    assert 0.2 < chosen.count("a") / len(chosen) < 0.3


def test_weighted_is_callable_and_records_its_config():
    strategy = experiment.weighted({"a": 1, "b": 3})
    assert strategy("run-3", ["a", "b"]) == "a"
    assert strategy.kind == "weighted"
    assert strategy.weights == {"a": 1.0, "b": 3.0}


def test_fixed_always_returns_its_variant():
    strategy = experiment.fixed("control")
    assert {strategy.select(run_id, ["control", "new"]) for run_id in RUN_IDS} == {"control"}
    assert (strategy.kind, strategy.weights) == ("fixed", None)


# Hash points: "user-42" 0.428, "" 0.889, "run-3" 0.080.
@pytest.mark.parametrize(
    ("value", "variant"), [("user-42", "b"), ("", "c"), (None, "c"), ("run-3", "a")]
)
def test_bucket_matches_known_sha256_buckets(value, variant):
    assert experiment.bucket(value).select("any-run", ["c", "a", "b"]) == variant


@pytest.mark.parametrize("value", ["user-1", "user-2", 42, 3.5, "", "ü-ñ"])
def test_bucket_uses_equal_weights_over_variant_names(value):
    names = ["red", "green", "blue"]
    expected = expected_variant(str(value), dict.fromkeys(names, 1))
    assert experiment.bucket(value).select("run-1", names) == expected


def test_bucket_ignores_the_run_id():
    strategy = experiment.bucket("user-7")
    assert len({strategy.select(run_id, ["a", "b", "c"]) for run_id in RUN_IDS}) == 1


def test_bucket_hashes_str_of_the_value():
    names = ["a", "b", "c", "d"]
    for n in range(50):
        assert experiment.bucket(n).select("r", names) == experiment.bucket(str(n)).select(
            "r", names
        )


def test_bucket_with_none_hashes_the_empty_string():
    strategy = experiment.bucket(None)
    assert strategy.value_was_none
    assert strategy.select("r", ["a", "b", "c"]) == expected_variant("", {"a": 1, "b": 1, "c": 1})
    assert not experiment.bucket("").value_was_none


@pytest.mark.parametrize("value", ["user-1", "user-2", "user-3", None])
def test_bucket_with_weights_follows_the_sha256_rule(value):
    weights = {"small": 1, "large": 9}
    key = "" if value is None else value
    strategy = experiment.bucket(value, weights=weights)
    assert strategy.select("r", ["small", "large"]) == expected_variant(key, weights)
    assert strategy.weights == {"small": 1.0, "large": 9.0}


def test_bucket_without_weights_or_variants_is_refused():
    with pytest.raises(ValueError, match="at least one variant"):
        experiment.bucket("x").select("r", [])


def test_custom_returns_what_its_function_returns():
    calls = []

    def choose():
        calls.append(1)
        return "b"

    strategy = experiment.custom(choose)
    assert strategy.select("r", ["a", "b"]) == "b"
    assert calls == [1]
    assert (strategy.kind, strategy.weights) == ("custom", None)


@pytest.mark.parametrize("make", [experiment.weighted, lambda w: experiment.bucket("v", w)])
@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"a": -1, "b": 1}, "negative"),
        ({"a": math.inf, "b": 1}, "finite"),
        ({"a": math.nan}, "finite"),
        ({"a": 0, "b": 0.0}, "all weights are zero"),
        ({}, "at least one variant"),
    ],
)
def test_invalid_weights_raise_value_error_at_creation(make, weights, message):
    with pytest.raises(ValueError, match=message):
        make(weights)


@pytest.mark.parametrize("weights", [{"a": "1"}, {"a": True}, {"a": None}, {1: 1}, [("a", 1)]])
def test_weights_of_the_wrong_type_raise_type_error(weights):
    with pytest.raises(TypeError):
        experiment.weighted(weights)


def test_fixed_needs_a_variant_name():
    with pytest.raises(ValueError, match="non-empty string"):
        experiment.fixed("")


def test_custom_needs_a_callable():
    with pytest.raises(TypeError, match="callable"):
        experiment.custom("a")
