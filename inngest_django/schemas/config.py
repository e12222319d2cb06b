"""Function configuration: triggers and flow-control options (frozen pydantic models)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..cron import CronSpec, InvalidCronError
from ..durations import MAX_SLEEP, parse_duration
from ..expressions import Expression, InvalidExpressionError
from ..names import MAX_NAME_LENGTH

Duration = timedelta | int | str


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TriggerEvent(_Config):
    """Run the function for each event named `event` (`prefix/*` matches a family)."""

    event: str
    expression: str | None = None

    @field_validator("event")
    @classmethod
    def _check_event(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("trigger event name must not be empty")
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(f"trigger event name is longer than {MAX_NAME_LENGTH}")
        if "*" in value[:-1] or (value.endswith("*") and value[-2:-1] not in ("/", ".")):
            raise ValueError(
                f"trigger event {value!r}: a wildcard may only end the name, as in 'shop/*'"
            )
        return value

    @field_validator("expression")
    @classmethod
    def _check_expression(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Expression(value)
            except InvalidExpressionError as exc:
                raise ValueError(str(exc)) from None
        return value


class TriggerCron(_Config):
    """Run the function on a cron schedule (5 fields, optional `TZ=Area/City ` prefix)."""

    cron: str
    jitter: str | None = None

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        try:
            CronSpec(value)
        except InvalidCronError as exc:
            raise ValueError(str(exc)) from None
        return value


Trigger = TriggerEvent | TriggerCron


def _positive_duration(value: Duration | None, what: str) -> Duration | None:
    if value is None:
        return None
    delta = parse_duration(value, what=what)
    if delta <= timedelta(0):
        raise ValueError(f"{what} must be longer than zero")
    if delta > MAX_SLEEP:
        raise ValueError(f"{what} of {delta} is longer than the limit of 366 days")
    return value


class Cancel(_Config):
    """Cancel a run when a matching event arrives (`event` is the trigger, `async` the new one)."""

    event: str
    if_exp: str | None = Field(default=None, alias="if")
    timeout: Duration | None = None

    @field_validator("event")
    @classmethod
    def _check_event(cls, value: str) -> str:
        if not value.strip() or "*" in value:
            raise ValueError(f"cancel event must be an event name without wildcards, got {value!r}")
        return value

    @field_validator("if_exp")
    @classmethod
    def _check_if(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Expression(value)
            except InvalidExpressionError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: Duration | None) -> Duration | None:
        return _positive_duration(value, "cancel timeout")

    @property
    def timeout_delta(self) -> timedelta | None:
        """Return how long after the trigger the rule listens, or None for the run's life."""
        return None if self.timeout is None else parse_duration(self.timeout)


class Concurrency(_Config):
    """Limit how many runs execute steps at once, optionally per key."""

    limit: int
    key: str | None = None
    scope: Literal["fn", "env", "account"] | None = None


class Throttle(_Config):
    """Delay run starts beyond `limit` per `period`."""

    limit: int
    period: Duration
    burst: int | None = 1
    key: str | None = None


class RateLimit(_Config):
    """Skip runs beyond `limit` per `period`."""

    limit: int
    period: Duration
    key: str | None = None


class Debounce(_Config):
    """Run once with the last event after `period` passes quietly."""

    period: Duration
    key: str | None = None
    timeout: Duration | None = None


class Priority(_Config):
    """Shift a run's place in the queue by a CEL expression returning seconds."""

    run: str


class Batch(_Config):
    """Hand the function up to `max_size` events at once."""

    max_size: int = Field(alias="maxSize")
    timeout: Duration | None = None
    key: str | None = None
    if_exp: str | None = Field(default=None, alias="if")


class Timeouts(_Config):
    """Cancel runs that waited too long to start or ran too long."""

    start: Duration | None = None
    finish: Duration | None = None

    @field_validator("start", "finish")
    @classmethod
    def _check(cls, value: Duration | None) -> Duration | None:
        return _positive_duration(value, "timeout")

    @property
    def start_delta(self) -> timedelta | None:
        """Return the longest a run may wait from its creation to its first start."""
        return None if self.start is None else parse_duration(self.start)

    @property
    def finish_delta(self) -> timedelta | None:
        """Return the longest a run may take from its first start to its end."""
        return None if self.finish is None else parse_duration(self.finish)


class Singleton(_Config):
    """Allow at most one active run per key."""

    key: str | None = None
    mode: Literal["skip", "cancel"]
