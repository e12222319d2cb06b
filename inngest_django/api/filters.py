"""Query-string filters for the run and event lists; a bad value is a 400 naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import status
from rest_framework.exceptions import APIException

from ..enums import RunStatus
from ..models import Event, FunctionRun, RunEvent
from ..names import matches_nothing

RUN_FILTERS = (
    "status",
    "function",
    "created_after",
    "created_before",
    "parent",
    "deferred",
    "event",
)
EVENT_FILTERS = ("name", "received_after", "received_before")
_TRUE = ("true", "1")
_FALSE = ("false", "0")


class InvalidFilterError(APIException):
    """A query parameter has a value the API cannot use."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "A query parameter has a value the API cannot use."
    default_code = "invalid_filter"


def _text(params: QueryDict, name: str) -> str | None:
    value = params.get(name)
    # A 400 like any value the API cannot use, rather than an empty page: no row holds a NUL.
    if value is not None and matches_nothing(value):
        raise InvalidFilterError(f"{name} must not contain NUL characters.")
    return value


def _datetime(params: QueryDict, name: str) -> datetime | None:
    raw = _text(params, name)
    if raw is None:
        return None
    problem = f"{name} must be an ISO 8601 datetime such as 2025-01-31T09:30:00Z, got {raw!r}."
    try:
        value = parse_datetime(raw.strip())
    except ValueError:
        value = None
    if value is None:
        raise InvalidFilterError(problem)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    try:
        # Normalised now: an offset that pushes year 1 or 9999 out of range fails here, not in SQL.
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidFilterError(problem) from None


def _boolean(params: QueryDict, name: str) -> bool | None:
    raw = _text(params, name)
    if raw is None:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InvalidFilterError(f"{name} must be true or false, got {raw!r}.")


def _statuses(params: QueryDict) -> list[str]:
    values = params.getlist("status")
    unknown = [value for value in values if value not in RunStatus.values]
    if unknown:
        raise InvalidFilterError(
            f"status {unknown[0]!r} is not one of {', '.join(RunStatus.values)}."
        )
    return values


def filter_runs(runs: QuerySet[FunctionRun], params: QueryDict) -> QuerySet[FunctionRun]:
    """Apply the run list's query parameters (see RUN_FILTERS) to `runs`."""
    statuses = _statuses(params)
    if statuses:
        runs = runs.filter(status__in=statuses)
    function_id = _text(params, "function")
    if function_id is not None:
        runs = runs.filter(function_id=function_id)
    created_after = _datetime(params, "created_after")
    if created_after is not None:
        runs = runs.filter(created_at__gte=created_after)
    created_before = _datetime(params, "created_before")
    if created_before is not None:
        runs = runs.filter(created_at__lt=created_before)
    parent = _text(params, "parent")
    if parent is not None:
        runs = runs.filter(parent_run_id=parent)
    deferred = _boolean(params, "deferred")
    if deferred is not None:
        runs = runs.filter(defer_intent__isnull=not deferred)
    event_id = _text(params, "event")
    if event_id is not None:
        # A batched run keeps its first event as `event` and every event in RunEvent rows.
        batched = RunEvent.objects.filter(event_id=event_id).values("run_id")
        runs = runs.filter(Q(event_id=event_id) | Q(pk__in=batched))
    return runs


def filter_events(events: QuerySet[Event], params: QueryDict) -> QuerySet[Event]:
    """Apply the event list's query parameters (see EVENT_FILTERS) to `events`."""
    name = _text(params, "name")
    if name is not None:
        events = events.filter(name=name)
    received_after = _datetime(params, "received_after")
    if received_after is not None:
        events = events.filter(received_at__gte=received_after)
    received_before = _datetime(params, "received_before")
    if received_before is not None:
        events = events.filter(received_at__lt=received_before)
    return events
