"""Event API input: read the body within its limit, check each event, store the batch once."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from django.db import transaction
from django.http import HttpRequest

from ..events import build_event_row
from ..exceptions import InngestDjangoError, InvalidEventError
from ..ids import seeded_id
from ..models import Event
from ..names import ENGINE_DATA_KEY, MAX_NAME_LENGTH, RESERVED_PREFIX
from ..schemas.events import Event as EventIn
from ..serialization import storable_problem

# Inngest refuses timestamps outside [1980-01-01, 2100-01-01] (pkg/event/event.go Validate).
MIN_TS_MS = 315_532_800_000
MAX_TS_MS = 4_102_444_800_000
# Deeper data could exhaust the stack of whoever walks it next: the encoder, CEL, a handler.
MAX_DATA_DEPTH = 100
# Inngest drops this key from external events: it carries the engine's own metadata.
READ_CHUNK_BYTES = 64 * 1024
BAD_BODY = "Request body must contain an event object or an array of event objects"


class EventRequestError(InngestDjangoError):
    """The Event API refuses this request."""

    def __init__(self, message: str | None = None, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def read_body(request: HttpRequest, *, limit: int) -> bytes:
    """Return the raw body, refusing one over `limit` bytes with 413 before reading it all."""
    # Read the stream ourselves: request.body would apply DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB),
    # smaller than a legal batch of 5,000 events.
    too_large = EventRequestError(
        f"Request body is over the limit of {limit} bytes (EVENT_API_MAX_REQUEST_BYTES)", status=413
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while chunk := request.read(min(READ_CHUNK_BYTES, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large
    return b"".join(chunks)


def parse_events(body: bytes, *, max_events: int) -> list[Any]:
    """Return the events of a JSON body (an array, or one object) without checking them."""
    try:
        parsed = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise EventRequestError("Request body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise EventRequestError(f"Request body is not valid JSON: {exc}") from None
    if isinstance(parsed, dict):
        return [parsed]
    if not isinstance(parsed, list):
        raise EventRequestError(BAD_BODY)
    if len(parsed) > max_events:
        raise EventRequestError(
            f"Too many events: {len(parsed)} in one request, the limit is {max_events} "
            "(EVENT_API_MAX_EVENTS)",
            status=413,
        )
    return parsed


def build_rows(items: list[Any], *, seed: str, max_event_bytes: int) -> list[Event]:
    """Return an unsaved Event per item, in order, with seed ids derived from `seed` if it parses.

    Raises:
        EventRequestError: 400 naming the event's index and field, or 413 for an oversized event.
    """
    now_ms = int(time.time() * 1000)
    rows = []
    for index, item in enumerate(items):
        event = check_event(item, index, now_ms=now_ms, max_event_bytes=max_event_bytes)
        try:
            row = build_event_row(event, index, system=False)
        except InvalidEventError as exc:
            raise EventRequestError(str(exc)) from None
        if seed:
            # Inngest's server counts events from 1 when it adds the index to the seed's entropy.
            # The row keeps its server-made id: ids order events as received, and a client's
            # clock (which the seed carries) may run behind and make a late event look early.
            row.seed_id = seeded_id(seed, index + 1) or ""
        rows.append(row)
    return rows


def check_event(item: Any, index: int, *, now_ms: int, max_event_bytes: int) -> EventIn:
    """Return one wire event as an EventIn, or raise EventRequestError naming index and field."""

    def refuse(message: str, status: int = 400) -> NoReturn:
        raise EventRequestError(f"event {index}: {message}", status=status)

    if not isinstance(item, Mapping):
        refuse(f"must be a JSON object, not {_json_type(item)}")
    name = item.get("name")
    if name is None or name == "":
        refuse("name is required")
    if not isinstance(name, str):
        refuse(f"name must be a string, not {_json_type(name)}")
    if not name.strip():
        refuse("name must not be blank")
    if len(name) > MAX_NAME_LENGTH:
        refuse(f"name is longer than {MAX_NAME_LENGTH} characters")
    if name.startswith(RESERVED_PREFIX):
        refuse(
            f"name {name!r} is reserved: names starting with {RESERVED_PREFIX!r} are sent only "
            "by the engine"
        )
    data = item.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        refuse(f"data must be a JSON object, not {_json_type(data)}")
    data = {key: value for key, value in data.items() if key != ENGINE_DATA_KEY}
    external_id = item.get("id")
    if external_id is None:
        external_id = ""
    if not isinstance(external_id, str):
        refuse(f"id must be a string, not {_json_type(external_id)}")
    if len(external_id) > MAX_NAME_LENGTH:
        refuse(f"id is longer than {MAX_NAME_LENGTH} characters")
    ts = item.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | None):
        refuse(f"ts must be an integer of epoch milliseconds, not {_json_type(ts)}")
    if not ts:
        ts = now_ms
    if ts < MIN_TS_MS:
        refuse(f"ts {ts} is before 1980-01-01")
    if ts > MAX_TS_MS:
        refuse(f"ts {ts} is after 2100-01-01")
    version = item.get("v")
    if version is not None and not isinstance(version, str):
        refuse(f"v must be a string, not {_json_type(version)}")
    user = item.get("user")
    if user is not None and not isinstance(user, dict):
        refuse(f"user must be a JSON object, not {_json_type(user)}")
    for field, value in (("name", name), ("id", external_id), ("data", data)):
        problem = storable_problem(value, max_depth=MAX_DATA_DEPTH)
        if problem:
            refuse(f"{field} {problem}")
    encoded = json.dumps({"name": name, "data": data, "id": external_id, "ts": ts})
    size = len(encoded.encode())
    if size > max_event_bytes:
        refuse(
            f"the event is {size} bytes, over the limit of {max_event_bytes} bytes "
            "(MAX_EVENT_BYTES)",
            status=413,
        )
    return EventIn(name=name, data=data, id=external_id, ts=ts)


@transaction.atomic
def store_rows(rows: list[Event]) -> list[str]:
    """Insert the events in one transaction and return their ids, in order.

    A row whose seed id is stored already is not inserted again: its stored id is returned, so a
    client's retry of a request gets the ids of the first and starts nothing twice.
    """
    Event.objects.bulk_create(rows, ignore_conflicts=True)
    seeds = [row.seed_id for row in rows if row.seed_id]
    if not seeds:
        return [row.pk for row in rows]
    stored = dict(Event.objects.filter(seed_id__in=seeds).values_list("seed_id", "id"))
    return [stored.get(row.seed_id, row.pk) if row.seed_id else row.pk for row in rows]


def _refuse_constant(value: str) -> NoReturn:
    raise ValueError(f"{value} is not a JSON number")


def _finite_float(value: str) -> float:
    number = float(value)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"{value} is out of range for a number")
    return number


def _json_type(value: Any) -> str:
    """Return the JSON name of a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
