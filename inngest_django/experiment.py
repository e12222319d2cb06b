"""Experiment selection strategies for `ctx.group.experiment`: fixed, weighted, bucket, custom."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

__all__ = [
    "Bucket",
    "Custom",
    "Fixed",
    "Strategy",
    "Weighted",
    "bucket",
    "custom",
    "fixed",
    "weighted",
]


def _hash_to_float(text: str) -> float:
    """Return a number in [0, 1) from the first 8 hex digits of SHA-256(text)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 2**32


def _select_by_weight(point: float, weights: Mapping[str, float]) -> str:
    """Return the variant whose cumulative-weight bucket holds `point`, names sorted A-Z."""
    entries = sorted(weights.items())
    # Add up one by one, as Inngest's TypeScript SDK does: sum() of floats rounds differently
    # on Python 3.12+, which could move a bucket edge and change a run's variant.
    total = 0.0
    for _, weight in entries:
        total += weight
    cursor = 0.0
    for name, weight in entries:
        cursor += weight / total
        if point < cursor:
            return name
    # Rounding can leave the last edge just below 1; never fall back to a zero-weight variant.
    return next(name for name, weight in reversed(entries) if weight > 0)


def _validated_weights(weights: Mapping[str, float], *, what: str) -> dict[str, float]:
    """Return `weights` as floats, or raise if a weight is not finite, is negative, or all are 0."""
    if not isinstance(weights, Mapping):
        raise TypeError(
            f"{what}: weights must be a mapping of variant name to weight, "
            f"got {type(weights).__name__}"
        )
    if not weights:
        raise ValueError(f"{what}: weights must name at least one variant")
    checked: dict[str, float] = {}
    for name, weight in weights.items():
        if not isinstance(name, str):
            raise TypeError(f"{what}: variant names must be strings, got {name!r}")
        if not name:
            raise ValueError(f"{what}: variant names must not be empty")
        if isinstance(weight, bool) or not isinstance(weight, Real):
            raise TypeError(f"{what}: weight for {name!r} must be a number, got {weight!r}")
        value = float(weight)
        if not math.isfinite(value):
            raise ValueError(f"{what}: weight for {name!r} is {weight!r}; weights must be finite")
        if value < 0:
            raise ValueError(
                f"{what}: weight for {name!r} is negative ({weight!r}); weights must be >= 0"
            )
        checked[name] = value
    if not any(checked.values()):
        raise ValueError(f"{what}: all weights are zero; at least one weight must be positive")
    return checked


class Strategy:
    """How `ctx.group.experiment` picks a variant; made by fixed, weighted, bucket or custom."""

    #: Strategy name recorded with the experiment ("fixed", "weighted", "bucket", "custom").
    kind: str = ""

    @property
    def weights(self) -> dict[str, float] | None:
        """Return the configured variant weights, or None when the strategy has none."""
        return None

    def select(self, run_id: str, variant_names: Sequence[str]) -> Any:
        """Return the name of the variant to run for this run."""
        raise NotImplementedError

    def __call__(self, run_id: str, variant_names: Sequence[str]) -> Any:
        return self.select(run_id, variant_names)


class Fixed(Strategy):
    """Always choose the same variant."""

    kind = "fixed"

    def __init__(self, variant: str) -> None:
        if not isinstance(variant, str) or not variant:
            raise ValueError(
                f"experiment.fixed(): variant must be a non-empty string, got {variant!r}"
            )
        self.variant = variant

    def select(self, run_id: str, variant_names: Sequence[str]) -> str:
        """Return the fixed variant name."""
        return self.variant

    def __repr__(self) -> str:
        return f"experiment.fixed({self.variant!r})"


class Weighted(Strategy):
    """Choose by weight, hashing the run id so a run always gets the same variant."""

    kind = "weighted"

    def __init__(self, weights: Mapping[str, float]) -> None:
        self._weights = _validated_weights(weights, what="experiment.weighted()")

    @property
    def weights(self) -> dict[str, float]:
        """Return the variant weights."""
        return dict(self._weights)

    def select(self, run_id: str, variant_names: Sequence[str]) -> str:
        """Return the variant whose weight bucket holds the hash of `run_id`."""
        return _select_by_weight(_hash_to_float(run_id), self._weights)

    def __repr__(self) -> str:
        return f"experiment.weighted({self._weights!r})"


class Bucket(Strategy):
    """Choose by hashing a value, so one value (a user id, say) always gets the same variant."""

    kind = "bucket"

    def __init__(self, value: Any, weights: Mapping[str, float] | None = None) -> None:
        self._weights = (
            None if weights is None else _validated_weights(weights, what="experiment.bucket()")
        )
        #: True when the value was None, so every such run lands in the bucket of "".
        self.value_was_none = value is None
        self.key = "" if value is None else str(value)

    @property
    def weights(self) -> dict[str, float] | None:
        """Return the variant weights, or None when variants share equal weights."""
        return None if self._weights is None else dict(self._weights)

    def select(self, run_id: str, variant_names: Sequence[str]) -> str:
        """Return the variant whose weight bucket holds the hash of the value."""
        weights = self._weights
        if weights is None:
            if not variant_names:
                raise ValueError("experiment.bucket() needs weights or at least one variant name")
            weights = dict.fromkeys(variant_names, 1.0)
        return _select_by_weight(_hash_to_float(self.key), weights)

    def __repr__(self) -> str:
        return f"experiment.bucket({self.key!r}, weights={self._weights!r})"


class Custom(Strategy):
    """Choose with a function of your own; it runs once per run, inside the memoized step."""

    kind = "custom"

    def __init__(self, fn: Callable[[], str]) -> None:
        if not callable(fn):
            raise TypeError(f"experiment.custom(): expected a callable, got {fn!r}")
        self.fn = fn

    def select(self, run_id: str, variant_names: Sequence[str]) -> Any:
        """Return whatever the function returns; the caller checks it names a variant."""
        return self.fn()

    def __repr__(self) -> str:
        return f"experiment.custom({self.fn!r})"


def fixed(variant: str) -> Fixed:
    """Always select `variant`.

    Raises:
        ValueError: `variant` is not a non-empty string.
    """
    return Fixed(variant)


def weighted(weights: Mapping[str, float]) -> Weighted:
    """Select by weight, seeded with the run id: `weighted({"control": 80, "new": 20})`.

    Args:
        weights: Variant name to weight. Weights are relative; they need not add up to 100.

    Raises:
        ValueError: A weight is not finite or is negative, or every weight is zero.
        TypeError: `weights` is not a mapping of strings to numbers.
    """
    return Weighted(weights)


def bucket(value: Any, weights: Mapping[str, float] | None = None) -> Bucket:
    """Select by consistent hashing of `value`: `bucket(user_id)`.

    Args:
        value: Hashed as `str(value)`; None hashes as the empty string.
        weights: Variant name to weight; equal weights over the experiment's variants if None.

    Raises:
        ValueError: A weight is not finite or is negative, or every weight is zero.
        TypeError: `weights` is not a mapping of strings to numbers.
    """
    return Bucket(value, weights)


def custom(fn: Callable[[], str]) -> Custom:
    """Select with `fn()`, which returns a variant name; it runs once per run, memoized.

    Raises:
        TypeError: `fn` is not callable.
    """
    return Custom(fn)
