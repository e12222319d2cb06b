"""JSON shapes of the REST API: functions, runs with their steps, defers and waits, events."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..functions import DeferredFunction, Function
from ..models import DeferIntent, Event, FunctionRun, StepRun, Wait, paused_function_ids
from ..names import MAX_NAME_LENGTH
from ..payload_access import UNREADABLE_KEY, unreadable_note
from ..schemas.config import TriggerCron

URL_NAMESPACE = "inngest_api"


def run_url(run_id: str, request: Any = None) -> str:
    """Return the URL of a run's detail, absolute when a request is at hand."""
    path = reverse(f"{URL_NAMESPACE}:run-detail", args=[run_id])
    return request.build_absolute_uri(path) if request is not None else path


def event_url(event_id: str, request: Any = None) -> str:
    """Return the URL of an event's detail, absolute when a request is at hand."""
    path = reverse(f"{URL_NAMESPACE}:event-detail", args=[event_id])
    return request.build_absolute_uri(path) if request is not None else path


# -- payloads -----------------------------------------------------------------------------------


class HidesPayloadsMixin:
    """Answer null for `payload_fields` when the view's context says payloads are hidden."""

    payload_fields: tuple[str, ...] = ()
    # Sealed columns shown even to users who may not see payloads (they come from code).
    sealed_fields: tuple[str, ...] = ()
    context: dict[str, Any]

    def to_representation(self, instance: Any) -> Any:
        hidden = self.context.get("payloads_hidden")
        if not hidden:
            unreadable = {}
            for name in (*self.payload_fields, *self.sealed_fields):
                note = unreadable_note(instance, name)
                if note is not None:
                    unreadable[name] = {UNREADABLE_KEY: note}
            if unreadable:
                # Read through a stand-in, so one undecryptable column is a note, not a 500.
                instance = _Overlay(instance, unreadable)
        data = super().to_representation(instance)  # type: ignore[misc]
        if hidden:
            for name in self.payload_fields:
                data[name] = None
        return data


class _Overlay:
    """A model instance seen with some attributes replaced."""

    def __init__(self, instance: Any, replaced: dict[str, Any]) -> None:
        self._instance = instance
        self._replaced = replaced

    def __getattr__(self, name: str) -> Any:
        if name in self._replaced:
            return self._replaced[name]
        return getattr(self._instance, name)


PAYLOADS_HIDDEN_HELP = (
    "True when payload fields (event data, outputs, errors, defer payloads, wait match values) "
    "are null here because encryption is on and the user lacks the view_payloads permission."
)


# -- errors and actions -------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error answer: 400, 401, 403, 404, 405 and 409."""

    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


class CancelRequestSerializer(serializers.Serializer):
    """The optional body of a cancel."""

    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_NAME_LENGTH,
        help_text="Kept as the run's cancel reason; defaults to who cancelled it.",
    )


class RootSerializer(serializers.Serializer):
    """The API's front page."""

    functions = serializers.URLField()
    runs = serializers.URLField()
    events = serializers.URLField()
    schema = serializers.URLField(help_text="The OpenAPI 3 schema.")
    docs = serializers.URLField(help_text="Swagger UI over the schema.")


# -- functions ----------------------------------------------------------------------------------


class TriggerSerializer(serializers.Serializer):
    """One trigger: an event name (with an optional CEL `expression`) or a cron schedule."""

    event = serializers.CharField(allow_null=True)
    expression = serializers.CharField(allow_null=True)
    cron = serializers.CharField(allow_null=True)


class FunctionOptionsSerializer(serializers.Serializer):
    """Retries, flow control, cancel rules and timeouts, as the function declared them."""

    retries = serializers.IntegerField()
    concurrency = serializers.ListField(child=serializers.DictField())
    throttle = serializers.DictField(allow_null=True)
    rate_limit = serializers.DictField(allow_null=True)
    debounce = serializers.DictField(allow_null=True)
    batch_events = serializers.DictField(allow_null=True)
    priority = serializers.DictField(allow_null=True)
    singleton = serializers.DictField(allow_null=True)
    idempotency = serializers.CharField(allow_null=True, help_text="CEL key expression.")
    cancel = serializers.ListField(child=serializers.DictField())
    timeouts = serializers.DictField(allow_null=True)


def _dump(option: Any) -> Any:
    """Return a pydantic option as JSON (durations in ISO 8601 or as declared), or None."""
    return None if option is None else option.model_dump(mode="json", exclude_none=True)


class FunctionSerializer(serializers.Serializer):
    """A registered function or deferred function."""

    id = serializers.CharField(help_text="The slug, `<app_id>-<fn_id>`.")
    app_id = serializers.CharField()
    fn_id = serializers.CharField(source="local_id")
    name = serializers.CharField()
    kind = serializers.SerializerMethodField()
    handler = serializers.CharField(source="qualified_name", help_text="Dotted path.")
    triggers = serializers.SerializerMethodField()
    options = serializers.SerializerMethodField()
    on_failure = serializers.SerializerMethodField()
    data_schema = serializers.SerializerMethodField()
    paused = serializers.SerializerMethodField(help_text="True while the function is paused.")

    @extend_schema_field(serializers.BooleanField())
    def get_paused(self, function: Function) -> bool:
        # One query per response: a list's rows share their root serializer's context.
        if "paused_ids" not in self.context:
            self.context["paused_ids"] = paused_function_ids()
        return function.id in self.context["paused_ids"]

    @extend_schema_field(serializers.ChoiceField(choices=["function", "deferred"]))
    def get_kind(self, function: Function) -> str:
        return "deferred" if isinstance(function, DeferredFunction) else "function"

    @extend_schema_field(TriggerSerializer(many=True))
    def get_triggers(self, function: Function) -> list[dict[str, Any]]:
        return [
            {"event": None, "expression": None, "cron": trigger.cron}
            if isinstance(trigger, TriggerCron)
            else {"event": trigger.event, "expression": trigger.expression, "cron": None}
            for trigger in function.triggers
        ]

    @extend_schema_field(FunctionOptionsSerializer)
    def get_options(self, function: Function) -> dict[str, Any]:
        flow = function.flow
        return {
            "retries": function.retries,
            "concurrency": [_dump(limit) for limit in flow.concurrency],
            "throttle": _dump(flow.throttle),
            "rate_limit": _dump(flow.rate_limit),
            "debounce": _dump(flow.debounce),
            "batch_events": _dump(flow.batch),
            "priority": _dump(flow.priority),
            "singleton": _dump(flow.singleton),
            "idempotency": flow.idempotency,
            "cancel": [_dump(rule) for rule in function.cancel],
            "timeouts": _dump(function.timeouts),
        }

    @extend_schema_field(
        serializers.CharField(allow_null=True, help_text="Slug of the on_failure function.")
    )
    def get_on_failure(self, function: Function) -> str | None:
        return function.on_failure_fn.id if function.on_failure_fn is not None else None

    @extend_schema_field(
        serializers.DictField(
            allow_null=True, help_text="JSON Schema of a deferred function's data, if typed."
        )
    )
    def get_data_schema(self, function: Function) -> dict[str, Any] | None:
        schema = getattr(function, "schema", None)
        return schema.model_json_schema() if schema is not None else None


# -- runs ---------------------------------------------------------------------------------------


class RunSummarySerializer(serializers.ModelSerializer):
    """A run as a link: who it is and where it stands."""

    url = serializers.SerializerMethodField()

    class Meta:
        model = FunctionRun
        fields = ["id", "url", "function_id", "status", "created_at", "started_at", "finished_at"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run: FunctionRun) -> str:
        return run_url(run.pk, self.context.get("request"))


class ChildRunSerializer(RunSummarySerializer):
    """A run this run started: invoked through step.invoke or deferred through ctx.defer."""

    kind = serializers.SerializerMethodField()

    class Meta(RunSummarySerializer.Meta):
        fields = [*RunSummarySerializer.Meta.fields, "kind"]

    @extend_schema_field(serializers.ChoiceField(choices=["invoked", "deferred"]))
    def get_kind(self, run: FunctionRun) -> str:
        return "deferred" if run.defer_intent_id else "invoked"


class RunSerializer(serializers.ModelSerializer):
    """A run in a list: no output, error or children, so a page is one query."""

    url = serializers.SerializerMethodField()
    deferred = serializers.SerializerMethodField()

    class Meta:
        model = FunctionRun
        fields = [
            "id",
            "url",
            "function_id",
            "status",
            "event",
            "parent_run",
            "rerun_of",
            "deferred",
            "attempt",
            "cancel_reason",
            "flow_note",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run: FunctionRun) -> str:
        return run_url(run.pk, self.context.get("request"))

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_deferred(self, run: FunctionRun) -> bool:
        return run.defer_intent_id is not None


class StepSerializer(HidesPayloadsMixin, serializers.ModelSerializer):
    """A step's memo: what it returned or how it failed, and when."""

    payload_fields = ("output", "error")

    class Meta:
        model = StepRun
        fields = [
            "step_key",
            "op",
            "status",
            "attempts",
            "output",
            "error",
            "wake_at",
            "created_at",
            "started_at",
            "finished_at",
        ]


class DeferSerializer(HidesPayloadsMixin, serializers.ModelSerializer):
    """A ctx.defer call of the run, with the run it started once the run finished."""

    payload_fields = ("payload",)
    sealed_fields = ("reason",)
    deferred_run = serializers.SerializerMethodField()

    class Meta:
        model = DeferIntent
        fields = [
            "id",
            "defer_id",
            "function_id",
            "status",
            "payload",
            "experiment",
            "reason",
            "size",
            "deferred_run",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(RunSummarySerializer(allow_null=True))
    def get_deferred_run(self, intent: DeferIntent) -> dict[str, Any] | None:
        run = getattr(intent, "deferred_run", None)
        return RunSummarySerializer(run, context=self.context).data if run is not None else None


class WaitSerializer(HidesPayloadsMixin, serializers.ModelSerializer):
    """What the run waited for (an event, an invoked run, a cancel rule) and how it ended."""

    # The trigger event's value the wait matches on is a piece of its data.
    payload_fields = ("match_value",)
    sealed_fields = ("expression",)
    match_value = serializers.CharField(allow_null=True, read_only=True)

    class Meta:
        model = Wait
        fields = [
            "id",
            "kind",
            "step_key",
            "event_name",
            "match_key",
            "match_value",
            "expression",
            "child_run",
            "expires_at",
            "created_at",
            "resolved_at",
            "outcome",
            "event",
        ]


class RunDetailSerializer(HidesPayloadsMixin, RunSerializer):
    """A run with its output or error, steps, defers, waits and related runs."""

    payload_fields = ("output", "error")
    payloads_hidden = serializers.SerializerMethodField(help_text=PAYLOADS_HIDDEN_HELP)
    batch_events = serializers.SerializerMethodField()
    steps = StepSerializer(many=True, read_only=True)
    defers = DeferSerializer(many=True, read_only=True)
    waits = WaitSerializer(many=True, read_only=True)
    parent = serializers.SerializerMethodField()
    children = ChildRunSerializer(source="child_runs", many=True, read_only=True)
    reruns = RunSummarySerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "output",
            "error",
            "payloads_hidden",
            "batch_events",
            "steps",
            "defers",
            "waits",
            "parent",
            "children",
            "reruns",
        ]

    @extend_schema_field(
        serializers.ListField(
            child=serializers.CharField(), help_text="Ids of a batched run's events, in order."
        )
    )
    def get_batch_events(self, run: FunctionRun) -> list[str]:
        return [row.event_id for row in run.batch_events.all()]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_payloads_hidden(self, run: FunctionRun) -> bool:
        return bool(self.context.get("payloads_hidden"))

    @extend_schema_field(RunSummarySerializer(allow_null=True))
    def get_parent(self, run: FunctionRun) -> dict[str, Any] | None:
        parent = run.parent_run
        return RunSummarySerializer(parent, context=self.context).data if parent else None


class ActionSerializer(serializers.Serializer):
    """What a cancel, rerun or retry did."""

    action = serializers.ChoiceField(choices=["cancel", "rerun", "retry"])
    detail = serializers.CharField(help_text="What was done, for a person to read.")
    run = RunSerializer(help_text="The run acted on (for a rerun, the new run).")


# -- events -------------------------------------------------------------------------------------


class EventSerializer(serializers.ModelSerializer):
    """An event in a list: no data, so a page stays small."""

    url = serializers.SerializerMethodField()
    producer_id = serializers.CharField(
        source="external_id", help_text="The sender's own `id`, or empty."
    )

    class Meta:
        model = Event
        fields = ["id", "url", "name", "producer_id", "ts", "received_at", "dispatched_at"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, event: Event) -> str:
        return event_url(event.pk, self.context.get("request"))


class EventDetailSerializer(HidesPayloadsMixin, EventSerializer):
    """An event with its data and the runs it started, batched runs included."""

    payload_fields = ("data",)
    data = serializers.JSONField(allow_null=True, read_only=True)
    payloads_hidden = serializers.SerializerMethodField(help_text=PAYLOADS_HIDDEN_HELP)
    runs = serializers.SerializerMethodField()

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "data", "payloads_hidden", "runs"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_payloads_hidden(self, event: Event) -> bool:
        return bool(self.context.get("payloads_hidden"))

    @extend_schema_field(RunSummarySerializer(many=True))
    def get_runs(self, event: Event) -> list[dict[str, Any]]:
        runs = self.context["runs"]
        return RunSummarySerializer(runs, many=True, context=self.context).data
