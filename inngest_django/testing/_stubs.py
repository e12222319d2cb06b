"""run_function's step stubs: lookup by step key, Timeout, and the checks a stub must pass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._interrupts import Interrupt
from ..exceptions import InvalidEventError
from ..expressions import Expression
from ..functions import Function
from ..schemas.events import Event
from ..waits import NO_MATCH, encode_value, lookup, match_key_of
from ._triggers import prepare_event

# The stub of a step with none: run the step for real, or (wait, invoke) refuse to guess.
MISSING = object()


class Timeout:
    """Stub for a wait_for_event that timed out (it returns None) or an invoke (it fails)."""


def is_timeout(stub: Any) -> bool:
    return stub is Timeout or isinstance(stub, Timeout)


class UnstubbedStepError(Exception):
    """A wait_for_event or invoke step has no stub, and run_function cannot resolve it."""

    def __init__(self, message: str, *, step_key: str) -> None:
        super().__init__(message)
        self.step_key = step_key


class SetupError(Interrupt):
    """The test's setup is wrong; run_function raises `error` instead of running on."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def find_stub(stubs: dict[str, Any], step_key: str) -> Any:
    """Return the stub for a full key ("charge:1"), else for its step id, else MISSING."""
    if step_key in stubs:
        return stubs[step_key]
    step_id, _, index = step_key.rpartition(":")
    if step_id and index.isdigit() and step_id in stubs:
        return stubs[step_id]
    return MISSING


def required_stub(stubs: dict[str, Any], step_key: str, doing: str, stub_with: str) -> Any:
    """Return a wait's or invoke's stub; without one, stop run_function with what to stub."""
    stub = find_stub(stubs, step_key)
    if stub is MISSING:
        raise SetupError(
            UnstubbedStepError(
                f"step {step_key!r} {doing}; stub it: step_stubs={{{step_key!r}: {stub_with}",
                step_key=step_key,
            )
        )
    return stub


def stub_event(
    function: Function,
    trigger_event: Event,
    step_key: str,
    stub: Any,
    name: str,
    if_exp: str | None,
    match: str | None,
) -> Event:
    """Return a wait's stub as the event, if the real wait would resolve with it."""
    if isinstance(stub, Mapping) and "name" not in stub:
        stub = {"name": name, **stub}
    try:
        received = prepare_event(function, stub, 0, name)
    except (InvalidEventError, TypeError) as exc:
        raise SetupError(
            TypeError(
                f"the stub of step {step_key!r} must be an Event or a dict such as "
                f"{{'data': {{...}}}}: {exc}"
            )
        ) from None
    if received.name != name:
        raise SetupError(
            ValueError(
                f"step {step_key!r} waits for {name!r}, but its stub is an event "
                f"{received.name!r}, which would never resolve it"
            )
        )
    trigger, candidate = trigger_event.to_json(), received.to_json()
    key = match or match_key_of(if_exp)
    if key:
        value = encode_value(lookup(trigger, key))
        if value == NO_MATCH or value != encode_value(lookup(candidate, key)):
            raise SetupError(
                ValueError(
                    f"step {step_key!r} matches on {key}, but its stub has "
                    f"{key}={lookup(candidate, key)!r} where the trigger has "
                    f"{lookup(trigger, key)!r}; the real wait would not resolve with it"
                )
            )
    if if_exp and not Expression(if_exp).matches({"event": trigger, "async": candidate}):
        raise SetupError(
            ValueError(
                f"the stub of step {step_key!r} does not satisfy its if_exp {if_exp!r}; "
                "the real wait would not resolve with it"
            )
        )
    return received
