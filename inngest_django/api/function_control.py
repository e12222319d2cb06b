"""REST API actions on functions: pause, resume, and invoke with a JSON payload."""

from __future__ import annotations

import logging
from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from ..exceptions import FunctionNotFoundError, InvalidEventError
from ..function_control import invoke_function, pause_function, resume_function
from ..models import FunctionPause
from ..models.pauses import PAUSE_PERMISSION
from ..registry import default_registry
from .openapi import extend_schema
from .schema import errors
from .serializers import run_url
from .views import InngestAPIMixin

logger = logging.getLogger(__name__)

_FUNCTION_PARAMETER = OpenApiParameter(
    "function_id", str, OpenApiParameter.PATH, description="The function's slug."
)


class PauseSerializer(serializers.Serializer):
    """A function's pause state after a pause or resume."""

    function_id = serializers.CharField()
    paused = serializers.BooleanField(help_text="True while the function is paused.")
    changed = serializers.BooleanField(help_text="False if it was in that state already.")
    paused_at = serializers.DateTimeField(allow_null=True)
    paused_by = serializers.CharField(allow_blank=True)
    detail = serializers.CharField(help_text="What was done, for a person to read.")


class InvokeRequestSerializer(serializers.Serializer):
    """What to invoke the function with."""

    data = serializers.DictField(
        required=False, default=dict, help_text="The event data the run sees (a JSON object)."
    )


class InvokeSerializer(serializers.Serializer):
    """The run an invoke started."""

    function_id = serializers.CharField()
    run_id = serializers.CharField(allow_null=True, help_text="Null if debounce merged it.")
    run_url = serializers.CharField(allow_null=True)


def _pause_schema(description: str) -> Any:
    return extend_schema(
        parameters=[_FUNCTION_PARAMETER],
        request=None,
        responses={200: OpenApiResponse(PauseSerializer, description=description), **errors(404)},
    )


@extend_schema(tags=["functions"])
class FunctionControlViewSet(InngestAPIMixin, viewsets.ViewSet):
    """Pause, resume and invoke a function."""

    action_permissions = {
        "list": PAUSE_PERMISSION,
        "pause": PAUSE_PERMISSION,
        "resume": PAUSE_PERMISSION,
        "invoke": "add_event",
    }

    def _known(self, function_id: str) -> None:
        try:
            default_registry.get(function_id)
        except FunctionNotFoundError:
            raise NotFound(f"No registered function has the id {function_id!r}.") from None

    def _answer(self, function_id: str, changed: bool, detail: str) -> Response:
        pause = FunctionPause.objects.filter(function_id=function_id).first()
        logger.info(
            "REST API %s function_id=%s user=%s",
            self.action,
            function_id,
            self.request.user.get_username(),
            extra={"function_id": function_id, "action": f"api_function_{self.action}"},
        )
        body = {
            "function_id": function_id,
            "paused": pause is not None,
            "changed": changed,
            "paused_at": pause.paused_at if pause else None,
            "paused_by": pause.paused_by if pause else "",
            "detail": detail,
        }
        return Response(PauseSerializer(body).data)

    @_pause_schema("The function is paused: triggers start no runs and its runs wait.")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, function_id: str) -> Response:
        """Pause a function: its triggers start no runs and workers claim none of its runs."""
        self._known(function_id)
        user = request.user.get_username() if request.user.is_authenticated else "REST API"
        changed = pause_function(function_id, paused_by=user)
        detail = "Paused." if changed else "It was paused already."
        return self._answer(function_id, changed, detail)

    @_pause_schema("The function is resumed: its waiting runs continue.")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, function_id: str) -> Response:
        """Resume a paused function; its waiting runs are claimed again."""
        self._known(function_id)
        changed = resume_function(function_id)
        detail = "Resumed." if changed else "It was not paused."
        return self._answer(function_id, changed, detail)

    @extend_schema(
        parameters=[_FUNCTION_PARAMETER],
        request=InvokeRequestSerializer,
        responses={
            201: OpenApiResponse(InvokeSerializer, description="The run, queued."),
            **errors(400, 404),
        },
    )
    @action(detail=True, methods=["post"])
    def invoke(self, request: Request, function_id: str) -> Response:
        """Start a run of the function with `data` as its event data."""
        self._known(function_id)
        body = InvokeRequestSerializer(data={} if request.data in (None, "") else request.data)
        if not body.is_valid():
            raise ParseError("data must be a JSON object.")
        try:
            run_id = invoke_function(function_id, body.validated_data["data"])
        except InvalidEventError as exc:
            raise ParseError(str(exc)) from None
        logger.info(
            "REST API invoke function_id=%s run_id=%s user=%s",
            function_id,
            run_id,
            request.user.get_username(),
            extra={"function_id": function_id, "run_id": run_id, "action": "api_function_invoke"},
        )
        url = run_url(run_id, request) if run_id else None
        data = InvokeSerializer({"function_id": function_id, "run_id": run_id, "run_url": url}).data
        headers = {"Location": url} if url else {}
        return Response(data, status=status.HTTP_201_CREATED, headers=headers)


def function_control_urls() -> list[URLPattern]:
    """Return the pause, resume and invoke routes, to list before the router's function detail."""
    return [
        path(
            f"functions/<path:function_id>/{verb}/",
            FunctionControlViewSet.as_view({"post": verb}),
            name=f"function-{verb}",
        )
        for verb in ("pause", "resume", "invoke")
    ]
