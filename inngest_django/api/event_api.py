"""The Inngest-compatible Event API view: `POST /e/<event_key>` stores events and returns ids."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..conf import app_settings
from ..event_keys import allows_name, authenticate
from ..names import MAX_NAME_LENGTH
from .event_ingest import EventRequestError, build_rows, parse_events, read_body, store_rows
from .openapi import extend_schema

logger = logging.getLogger(__name__)

SEED_HEADER = "x-inngest-event-id-seed"
# The key may come in a header instead of the path, which web servers write to access logs.
KEY_HEADER = "x-inngest-event-key"
KEY_REQUIRED = "Event key is required"
KEY_NOT_FOUND = "Event key not found"


class EventInSerializer(serializers.Serializer):
    """One event as a client sends it (for the OpenAPI schema; the view checks events itself)."""

    name = serializers.CharField(max_length=MAX_NAME_LENGTH)
    data = serializers.DictField(required=False, help_text="A JSON object; {} if absent.")
    id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_NAME_LENGTH,
        help_text="Producer id, for dedupe.",
    )
    ts = serializers.IntegerField(
        required=False, help_text="Epoch milliseconds, 1980-01-01 to 2100-01-01; now if absent."
    )
    v = serializers.CharField(required=False, help_text="Schema version; accepted and ignored.")
    user = serializers.DictField(required=False, help_text="Deprecated; accepted and ignored.")


class EventIdsSerializer(serializers.Serializer):
    """The Event API's success reply."""

    ids = serializers.ListField(child=serializers.CharField(), help_text="One per event, in order.")
    status = serializers.IntegerField()


class EventAPIErrorSerializer(serializers.Serializer):
    """The Event API's error reply."""

    error = serializers.CharField()
    status = serializers.IntegerField()


class JSONOnlyNegotiation(BaseContentNegotiation):
    """Always answer JSON, whatever the Accept header asks for: the clients only read JSON."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


def error_response(status: int, message: str) -> Response:
    """Return the JSON error body the official clients read: a string `error` and the status."""
    return Response({"error": message, "status": status}, status=status)


def _api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer DRF's own refusals (405 and the like) in the Event API's JSON shape."""
    if isinstance(exc, Http404):
        return error_response(404, "Not found")
    if isinstance(exc, PermissionDenied):
        return error_response(403, "Permission denied")
    if isinstance(exc, APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, detail)
    return None


_ERRORS = {
    status: OpenApiResponse(EventAPIErrorSerializer, description=description)
    for status, description in (
        (400, "Malformed JSON or a bad event; the message names the event's index and field."),
        (401, f"{KEY_REQUIRED!r} or {KEY_NOT_FOUND!r} (revoked keys are not found)."),
        (
            403,
            "The key is limited to event-name prefixes and an event's name starts with none of "
            "them; nothing of the request is stored.",
        ),
        (413, "The body, an event or the number of events is over its limit."),
    )
}


class EventAPIView(APIView):
    """Receive events from Inngest clients; the event key in the path is the only credential."""

    # No session or token authentication: no CSRF check, and no cookie grants anything here.
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []
    parser_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation
    # Not the project's DEFAULT_SCHEMA_CLASS: DRF's own cannot describe this view.
    schema = AutoSchema()

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return _api_exception_handler

    @extend_schema(
        operation_id="inngest_send_events",
        summary="Send events",
        description=(
            "Store a JSON array of events (or one event object) and return their ids. Up to "
            "EVENT_API_MAX_EVENTS events per request. With the `x-inngest-event-id-seed` header "
            "the ids are deterministic, so a retried request stores nothing twice."
        ),
        request={"application/json": EventInSerializer(many=True)},
        responses={200: EventIdsSerializer, **_ERRORS},
        auth=[],
        tags=["events"],
    )
    def post(self, request: Request, event_key: str = "") -> Response:
        """Authenticate the key, then validate and store every event of the body, or none."""
        event_key = event_key or key_from_headers(request)
        if not event_key:
            return self._refuse(401, KEY_REQUIRED)
        key = authenticate(event_key)
        if key is None:
            return self._refuse(401, KEY_NOT_FOUND)
        try:
            body = read_body(request._request, limit=app_settings.EVENT_API_MAX_REQUEST_BYTES)
            items = parse_events(body, max_events=app_settings.EVENT_API_MAX_EVENTS)
            rows = build_rows(
                items,
                seed=request.headers.get(SEED_HEADER, ""),
                max_event_bytes=app_settings.MAX_EVENT_BYTES,
            )
        except EventRequestError as exc:
            return self._refuse(exc.status, exc.message, key_name=key.name)
        # The whole request or nothing, as for a bad event: a client retries it as one.
        for index, row in enumerate(rows):
            if not allows_name(key, row.name):
                allowed = ", ".join(repr(prefix) for prefix in key.event_prefixes)
                message = (
                    f"event {index}: name {row.name!r} is not allowed for this event key, "
                    f"which may send only names starting with {allowed}"
                )
                return self._refuse(403, message, key_name=key.name)
        ids = store_rows(rows)
        logger.info(
            "Events received key=%s count=%d",
            key.name,
            len(rows),
            extra={"action": "events_received", "event_key_id": key.pk, "count": len(rows)},
        )
        return Response({"ids": ids, "status": 200})

    def _refuse(self, status: int, message: str, *, key_name: str = "") -> Response:
        logger.info(
            "Event API request refused status=%d key=%s error=%s",
            status,
            key_name or "-",
            message,
            extra={"action": "events_refused", "status": status},
        )
        return error_response(status, message)


def key_from_headers(request: Request) -> str:
    """Return the key of an `X-Inngest-Event-Key` or `Authorization: Bearer` header, or ""."""
    key = request.headers.get(KEY_HEADER, "").strip()
    if key:
        return key
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


@extend_schema(exclude=True)
class EventAPIAliasView(EventAPIView):
    """The view where the schema leaves it out: a trailing slash, or `/e/` with a header key."""


event_api_view = EventAPIView.as_view()
event_api_alias_view = EventAPIAliasView.as_view()
