"""run_function's trigger events: named, validated and stamped as the worker hands them over."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..engine.rules import as_handler_sees
from ..events import build_event_row
from ..exceptions import InvalidEventError
from ..functions import DEFERRED_EVENT, INVOKED_EVENT, SCHEDULED_EVENT, DeferredFunction, Function
from ..names import RESERVED_PREFIX
from ..schemas.events import Event


def trigger_events(function: Function, event: Any, events: Any, data: Any) -> list[Event]:
    given = [n for n, v in (("event", event), ("events", events), ("data", data)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"run_function takes one of event, events or data, got {given}")
    name, default_data = _default_trigger(function)
    if events is not None:
        if isinstance(events, Event | Mapping) or not isinstance(events, Sequence) or not events:
            raise TypeError("events must be a non-empty list of events")
        if isinstance(function, DeferredFunction):
            raise TypeError("a deferred function runs for one event, not a batch")
        items = list(events)
    elif event is not None:
        items = [event]
    else:
        items = [{"data": default_data if data is None else data}]
    prepared = [prepare_event(function, item, index, name) for index, item in enumerate(items)]
    if not isinstance(function, DeferredFunction):
        for item in prepared:
            _check_trigger(function, item)
    return prepared


def _default_trigger(function: Function) -> tuple[str | None, dict[str, Any]]:
    """Return the name a nameless trigger gets, and the data it gets when none is given."""
    if isinstance(function, DeferredFunction):
        return DEFERRED_EVENT, {}
    names = {t.event for t in function.event_triggers}
    if len(names) == 1 and not next(iter(names)).endswith("*"):
        return names.pop(), {}
    if not names and function.cron_triggers:
        return SCHEDULED_EVENT, {"cron": function.cron_triggers[0].cron}
    return None, {}


def prepare_event(function: Function, item: Any, index: int, name: str | None) -> Event:
    """Return the event as the worker would hand it over: validated, JSON, with a timestamp."""
    if isinstance(item, Mapping) and "name" not in item:
        if name is None:
            raise TypeError(
                f"event {index} has no name, and {function.id} has no single trigger to take "
                "it from; pass an Event or a dict with a name"
            )
        item = {"name": name, **item}
    if isinstance(item, Mapping):
        try:
            item = Event.model_validate(dict(item))
        except ValidationError as exc:
            raise InvalidEventError(
                f"event {index} is invalid: {exc}; to pass only its data, use data="
            ) from None
    # System names stay allowed: a test may hand a handler an invoked or failure event.
    system = str(getattr(item, "name", "")).startswith(RESERVED_PREFIX)
    row = build_event_row(item, index, system=system)
    return as_handler_sees(Event(name=row.name, data=row.data, id=row.external_id, ts=row.ts))


def _check_trigger(function: Function, event: Event) -> None:
    if event.name == INVOKED_EVENT or (event.name == SCHEDULED_EVENT and function.cron_triggers):
        return
    if not function.matches(event.to_json()):
        triggers = ", ".join(
            t.event + (f" if {t.expression}" if t.expression else "")
            for t in function.event_triggers
        )
        raise ValueError(
            f"{function.id} would not run for event {event.name!r}: no trigger matches it "
            f"(triggers: {triggers or 'cron only'})"
        )
