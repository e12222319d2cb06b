"""A function's flow-control options, checked when it is declared: limits, keys and combinations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .durations import parse_duration
from .expressions import Expression, InvalidExpressionError
from .schemas.config import (
    Batch,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
)

MAX_CONCURRENCY_LIMITS = 2
PRIORITY_CLAMP_SECONDS = 600
MIN_PERIOD = timedelta(seconds=1)
MAX_THROTTLE_PERIOD = timedelta(days=7)
MAX_RATE_LIMIT_PERIOD = timedelta(hours=24)
IDEMPOTENCY_PERIOD = timedelta(hours=24)
MAX_BATCH_SIZE = 1000
MAX_BATCH_TIMEOUT = timedelta(hours=1)
# What batching cannot be combined with (SEMANTICS.md 5): each decides per event, a batch
# starts one run for many.
BATCH_CONFLICTS = ("idempotency", "rate_limit", "priority", "debounce", "singleton")


class FlowConfigError(ValueError):
    """A flow-control option is invalid; the message names it."""


def _compile(source: Any, option: str) -> Expression:
    if not isinstance(source, str) or not source.strip():
        raise FlowConfigError(f"{option} must be a non-empty CEL expression, got {source!r}")
    try:
        return Expression(source)
    except InvalidExpressionError as exc:
        raise FlowConfigError(f"{option}: {exc}") from None


def _period(value: Any, option: str, *, most: timedelta) -> timedelta:
    try:
        period = parse_duration(value, what=option)
    except ValueError as exc:
        raise FlowConfigError(str(exc)) from None
    if not MIN_PERIOD <= period <= most:
        raise FlowConfigError(f"{option} must be from 1s to {most}, got {period}")
    return period


@dataclass
class FlowOptions:
    """Validated flow control of one function, with its CEL expressions compiled once."""

    concurrency: list[Concurrency] = field(default_factory=list)
    throttle: Throttle | None = None
    rate_limit: RateLimit | None = None
    debounce: Debounce | None = None
    priority: Priority | None = None
    singleton: Singleton | None = None
    idempotency: str | None = None
    batch: Batch | None = None
    expressions: dict[str, Expression] = field(default_factory=dict)
    periods: dict[str, timedelta] = field(default_factory=dict)

    @classmethod
    def build(cls, options: dict[str, Any]) -> FlowOptions:
        """Return the validated options, or raise FlowConfigError naming the bad one."""
        flow = cls(
            concurrency=_as_list(options.get("concurrency"), Concurrency, "concurrency"),
            throttle=_as_one(options.get("throttle"), Throttle, "throttle"),
            rate_limit=_as_one(options.get("rate_limit"), RateLimit, "rate_limit"),
            debounce=_as_one(options.get("debounce"), Debounce, "debounce"),
            priority=_as_one(options.get("priority"), Priority, "priority"),
            singleton=_as_one(options.get("singleton"), Singleton, "singleton"),
            idempotency=options.get("idempotency"),
            batch=_as_one(options.get("batch_events"), Batch, "batch_events"),
        )
        flow._check()
        return flow

    @property
    def active(self) -> bool:
        """Return True if any option is set."""
        return bool(
            self.concurrency
            or self.throttle
            or self.rate_limit
            or self.debounce
            or self.priority
            or self.singleton
            or self.idempotency
            or self.batch
        )

    def _key(self, name: str, source: str | None) -> None:
        if source is not None:
            self.expressions[name] = _compile(source, f"{name}.key")

    def _check(self) -> None:
        if len(self.concurrency) > MAX_CONCURRENCY_LIMITS:
            raise FlowConfigError(
                f"concurrency has {len(self.concurrency)} limits; the most is "
                f"{MAX_CONCURRENCY_LIMITS}"
            )
        for index, limit in enumerate(self.concurrency):
            if limit.limit < 1:
                raise FlowConfigError(f"concurrency[{index}].limit must be 1 or more")
            if limit.scope in ("env", "account") and not limit.key:
                raise FlowConfigError(
                    f"concurrency[{index}] with scope {limit.scope!r} needs a key: the key names "
                    "the queue that functions share"
                )
            self._key(f"concurrency[{index}]", limit.key)
        if self.throttle is not None:
            if self.throttle.limit < 1 or (self.throttle.burst or 1) < 1:
                raise FlowConfigError("throttle.limit and throttle.burst must be 1 or more")
            self.periods["throttle"] = _period(
                self.throttle.period, "throttle.period", most=MAX_THROTTLE_PERIOD
            )
            self._key("throttle", self.throttle.key)
        if self.rate_limit is not None:
            if self.rate_limit.limit < 1:
                raise FlowConfigError("rate_limit.limit must be 1 or more")
            self.periods["rate_limit"] = _period(
                self.rate_limit.period, "rate_limit.period", most=MAX_RATE_LIMIT_PERIOD
            )
            self._key("rate_limit", self.rate_limit.key)
        if self.debounce is not None:
            self.periods["debounce"] = _period(
                self.debounce.period, "debounce.period", most=MAX_THROTTLE_PERIOD
            )
            if self.debounce.timeout is not None:
                self.periods["debounce.timeout"] = _period(
                    self.debounce.timeout, "debounce.timeout", most=MAX_THROTTLE_PERIOD
                )
            self._key("debounce", self.debounce.key)
        if self.priority is not None:
            self.expressions["priority"] = _compile(self.priority.run, "priority.run")
        if self.singleton is not None:
            self._key("singleton", self.singleton.key)
            if self.singleton.mode == "cancel" and len(self.concurrency) >= MAX_CONCURRENCY_LIMITS:
                # A run holds at most two slots, and singleton "cancel" takes one of them.
                raise FlowConfigError(
                    f"singleton mode 'cancel' uses a concurrency slot of its own, so it takes "
                    f"at most {MAX_CONCURRENCY_LIMITS - 1} concurrency limit, not "
                    f"{len(self.concurrency)}"
                )
        if self.idempotency is not None:
            self.expressions["idempotency"] = _compile(self.idempotency, "idempotency")
        if self.batch is not None:
            self._check_batch(self.batch)

    def _check_batch(self, batch: Batch) -> None:
        if not 2 <= batch.max_size <= MAX_BATCH_SIZE:
            raise FlowConfigError(f"batch_events.max_size must be from 2 to {MAX_BATCH_SIZE}")
        if batch.timeout is None:
            raise FlowConfigError("batch_events needs a timeout: how long a batch waits to fill")
        self.periods["batch"] = _period(
            batch.timeout, "batch_events.timeout", most=MAX_BATCH_TIMEOUT
        )
        conflicts = [name for name in BATCH_CONFLICTS if getattr(self, name)]
        if conflicts:
            raise FlowConfigError(
                f"batch_events cannot be combined with {', '.join(conflicts)}: they decide per "
                "event, and a batch starts one run for many events"
            )
        self._key("batch", batch.key)
        if batch.if_exp is not None:
            self.expressions["batch.if"] = _compile(batch.if_exp, "batch_events.if_exp")


def _as_list(value: Any, kind: type, option: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, kind):
        return [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, kind) for v in value):
        raise FlowConfigError(f"{option} must be a {kind.__name__} or a list of them")
    return list(value)


def _as_one(value: Any, kind: type, option: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise FlowConfigError(f"{option} must be a {kind.__name__}, got {value!r}")
    return value
