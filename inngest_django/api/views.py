"""REST API views: functions, runs and events to read, and cancel, rerun and retry on runs."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.urls import reverse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..enums import FINISHED_STATUSES, RunStatus
from ..exceptions import FunctionNotFoundError
from ..models import DeferIntent, Event, FunctionRun, RunEvent
from ..names import matches_nothing
from ..payload_access import can_view_payloads
from ..registry import default_registry
from ..runs import cancel_run, rerun_run, retry_run
from .filters import filter_events, filter_runs
from .openapi import extend_schema
from .pagination import EventPagination, RunPagination
from .permissions import ConfiguredAccessMixin
from .schema import EVENT_LIST_PARAMETERS, RUN_LIST_PARAMETERS, errors
from .serializers import (
    URL_NAMESPACE,
    ActionSerializer,
    CancelRequestSerializer,
    EventDetailSerializer,
    EventSerializer,
    FunctionSerializer,
    RootSerializer,
    RunDetailSerializer,
    RunSerializer,
    run_url,
)

logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 26
_RUN_LIST_FIELDS = (
    "id",
    "function_id",
    "status",
    "event",
    "parent_run",
    "rerun_of",
    "defer_intent",
    "attempt",
    "cancel_reason",
    "flow_note",
    "created_at",
    "started_at",
    "finished_at",
)
# The foreign keys are there for prefetches, which match children and reruns on them.
_RUN_SUMMARY_FIELDS = (
    "id",
    "function_id",
    "status",
    "defer_intent",
    "parent_run",
    "rerun_of",
    "created_at",
    "started_at",
    "finished_at",
)
_ID_PARAMETER = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The id.")


def _run_action_schema(
    code: int,
    description: str,
    *,
    error_codes: tuple[int, ...] = (404, 409),
    request: type | None = None,
) -> Any:
    """Describe a POST on a run that answers `code` with an ActionSerializer body."""
    return extend_schema(
        parameters=[_ID_PARAMETER],
        request=request,
        responses={
            code: OpenApiResponse(ActionSerializer, description=description),
            **errors(*error_codes),
        },
    )


class ConflictError(APIException):
    """The run is not in a state this action applies to."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The run is not in a state this action applies to."
    default_code = "conflict"


class InngestAPIMixin(ConfiguredAccessMixin):
    """JSON in and out, drf-spectacular's schema, access from settings."""

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    schema = AutoSchema()


class _PayloadContextMixin:
    """Tell the serializers whether this user may see payloads (see payload_access)."""

    request: Request

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()  # type: ignore[misc]
        return {**context, "payloads_hidden": not can_view_payloads(self.request.user)}


class _ByIdMixin:
    """Look rows up by their string id; an id no row can have is a 404 without a query."""

    lookup_value_regex = "[^/]+"
    noun = "row"
    kwargs: dict[str, Any]

    def get_object(self) -> Any:
        missing = NotFound(f"No {self.noun} has this id.")
        value = self.kwargs["pk"]
        if len(value) > MAX_ID_LENGTH or matches_nothing(value):
            raise missing
        try:
            return super().get_object()  # type: ignore[misc]
        except Http404:
            raise missing from None


@extend_schema(tags=["functions"])
class FunctionViewSet(InngestAPIMixin, viewsets.ViewSet):
    """Registered functions, with triggers and options."""

    lookup_value_regex = ".+"
    # Functions are the catalogue of what runs: whoever may view runs may read it.
    action_permissions = {"list": "view_functionrun", "retrieve": "view_functionrun"}

    @extend_schema(responses={200: FunctionSerializer(many=True), **errors()})
    def list(self, request: Request) -> Response:
        """List every registered function and deferred function, by slug."""
        functions = sorted(default_registry, key=lambda function: function.id)
        return Response(FunctionSerializer(functions, many=True).data)

    @extend_schema(parameters=[_ID_PARAMETER], responses={200: FunctionSerializer, **errors(404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        """Return one registered function by slug."""
        try:
            function = default_registry.get(pk)
        except FunctionNotFoundError:
            raise NotFound(f"No registered function has the id {pk!r}.") from None
        return Response(FunctionSerializer(function).data)


@extend_schema(tags=["runs"])
class RunViewSet(
    InngestAPIMixin,
    _PayloadContextMixin,
    _ByIdMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Runs, newest first, with filters; a run's steps, defers, waits and related runs."""

    pagination_class = RunPagination
    noun = "run"
    # An action needs its own permission only: the admin's buttons ask for no more either.
    action_permissions = {
        "list": "view_functionrun",
        "retrieve": "view_functionrun",
        "cancel": "cancel_functionrun",
        "rerun": "rerun_functionrun",
        "retry": "retry_functionrun",
    }

    def get_queryset(self) -> QuerySet[FunctionRun]:
        runs = FunctionRun.objects.all()
        if self.action == "list":
            return filter_runs(runs.only(*_RUN_LIST_FIELDS), self.request.query_params)
        if self.action == "retrieve":
            summaries = FunctionRun.objects.only(*_RUN_SUMMARY_FIELDS).order_by("created_at")
            return runs.select_related("parent_run").prefetch_related(
                "steps",
                Prefetch("defers", DeferIntent.objects.select_related("deferred_run")),
                "waits",
                Prefetch("child_runs", summaries),
                Prefetch("reruns", summaries),
                Prefetch("batch_events", RunEvent.objects.order_by("position")),
            )
        return runs

    def get_serializer_class(self) -> type:
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    @extend_schema(
        parameters=RUN_LIST_PARAMETERS, responses={200: RunSerializer(many=True), **errors(400)}
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List runs, newest first, filtered by the query parameters."""
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[_ID_PARAMETER], responses={200: RunDetailSerializer, **errors(404)})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Return a run with its steps, defers, waits, parent, children and reruns."""
        return super().retrieve(request, *args, **kwargs)

    def _answer(
        self, action_name: str, run_id: str, detail: str, code: int, **headers: str
    ) -> Response:
        logger.info(
            "REST API %s run_id=%s user=%s",
            action_name,
            run_id,
            self.request.user.get_username(),
            extra={"run_id": run_id, "action": f"api_run_{action_name}"},
        )
        run = FunctionRun.objects.only(*_RUN_LIST_FIELDS).get(pk=run_id)
        body = {"action": action_name, "detail": detail, "run": run}
        data = ActionSerializer(body, context=self.get_serializer_context()).data
        return Response(data, status=code, headers=headers)

    @_run_action_schema(
        202,
        "The run stops before its next step.",
        error_codes=(400, 404, 409),
        request=CancelRequestSerializer,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Ask a run to stop; a run that has finished already is a 409."""
        run = self.get_object()
        body = CancelRequestSerializer(data={} if request.data in (None, "") else request.data)
        if not body.is_valid():
            raise ParseError(_first_error(body.errors))
        if run.status in FINISHED_STATUSES:
            raise ConflictError(
                f"Run {run.pk} has already finished with status {run.status}; "
                "there is nothing to cancel."
            )
        user = request.user.get_username() if request.user.is_authenticated else "anonymous"
        reason = body.validated_data.get("reason") or f"Cancelled through the REST API by {user}"
        if cancel_run(run.pk, reason=reason):
            detail = "Cancel requested: the run stops before its next step."
        else:
            detail = "A cancel was already requested; the run stops before its next step."
        return self._answer("cancel", run.pk, detail, status.HTTP_202_ACCEPTED)

    @_run_action_schema(201, "The new run, queued; its URL is in the Location header too.")
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: str) -> Response:
        """Start a new run of the same function with the same event, from the first step."""
        run = self.get_object()
        try:
            new_id = rerun_run(run.pk)
        except FunctionNotFoundError:
            raise ConflictError(
                f"Run {run.pk} cannot be rerun: its function {run.function_id!r} is no "
                "longer registered."
            ) from None
        if new_id is None:  # deleted since get_object
            raise NotFound(f"No {self.noun} has this id.")
        detail = f"Run {new_id} queued: a rerun of {run.pk} from the start with the same event."
        location = run_url(new_id, request)
        return self._answer("rerun", new_id, detail, status.HTTP_201_CREATED, Location=location)

    @_run_action_schema(202, "The run is queued again from its failed step.")
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """Queue a FAILED run again from its failed step; any other status is a 409."""
        run = self.get_object()
        if not retry_run(run.pk):
            current = FunctionRun.objects.filter(pk=run.pk).values_list("status", flat=True)
            raise ConflictError(
                f"Run {run.pk} is {current.first() or run.status}; only a "
                f"{RunStatus.FAILED} run can be retried."
            )
        detail = "Queued again: completed steps keep their results and the failed step runs again."
        return self._answer("retry", run.pk, detail, status.HTTP_202_ACCEPTED)


@extend_schema(tags=["events"])
class EventViewSet(
    InngestAPIMixin,
    _PayloadContextMixin,
    _ByIdMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Events, newest first, and the runs each one started."""

    pagination_class = EventPagination
    noun = "event"
    action_permissions = {"list": "view_event", "retrieve": "view_event"}

    def get_queryset(self) -> QuerySet[Event]:
        events = Event.objects.all()
        if self.action == "list":
            return filter_events(events.defer("data"), self.request.query_params)
        return events

    def get_serializer_class(self) -> type:
        return EventDetailSerializer if self.action == "retrieve" else EventSerializer

    @extend_schema(
        parameters=EVENT_LIST_PARAMETERS,
        responses={200: EventSerializer(many=True), **errors(400)},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List events, newest first, filtered by the query parameters."""
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[_ID_PARAMETER], responses={200: EventDetailSerializer, **errors(404)}
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Return an event with its data and every run it started, batched runs included."""
        event = self.get_object()
        batched = RunEvent.objects.filter(event_id=event.pk).values("run_id")
        runs = (
            FunctionRun.objects.filter(Q(event_id=event.pk) | Q(pk__in=batched))
            .only(*_RUN_SUMMARY_FIELDS)
            .order_by("created_at", "id")
        )
        context = {**self.get_serializer_context(), "runs": runs}
        return Response(EventDetailSerializer(event, context=context).data)


class RootView(InngestAPIMixin, APIView):
    """The API's front page: a link to each collection, the schema and the docs."""

    @extend_schema(responses={200: RootSerializer, **errors()}, tags=["root"])
    def get(self, request: Request) -> Response:
        """Return the URL of each collection, the schema and the docs."""
        routes = {
            "functions": "function-list",
            "runs": "run-list",
            "events": "event-list",
            "schema": "schema",
            "docs": "docs",
        }
        links = {
            key: request.build_absolute_uri(reverse(f"{URL_NAMESPACE}:{name}"))
            for key, name in routes.items()
        }
        return Response(RootSerializer(links).data)


class NotFoundView(InngestAPIMixin, APIView):
    """Answer any other path under the prefix with a JSON 404, after the access check."""

    @extend_schema(exclude=True)
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("No REST API route has this path.")

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("No REST API route has this path.")


def _first_error(errors_by_field: Any) -> str:
    """Return one readable message from a serializer's errors."""
    for field, messages in errors_by_field.items():
        message = messages[0] if isinstance(messages, list) else messages
        return f"{field}: {message}" if field != "non_field_errors" else str(message)
    return "The body is invalid."
