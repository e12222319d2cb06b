"""Read-only admins: events, runs, steps, waits, defers, flow control; runs can be cancelled."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .enums import FINISHED_STATUSES, DeferStatus, RunStatus, WaitKind
from .functions import INVOKED_EVENT, SCHEDULED_EVENT, DeferredFunction
from .models import (
    CronSchedule,
    DeferIntent,
    Event,
    FlowState,
    FunctionRun,
    IdempotencyKey,
    OutboxMessage,
    StepRun,
    Wait,
)
from .registry import default_registry
from .runs import cancel_run
from .waits import NO_MATCH

# Badge colours by value; run, step and defer statuses share the names they have in common, and
# wait outcomes have names of their own.
STATUS_COLOURS = {
    "QUEUED": "#6c757d",
    "RUNNING": "#0d6efd",
    "SLEEPING": "#6f42c1",
    "WAITING": "#0a8ea0",
    "COMPLETED": "#198754",
    "ERRORED": "#d9730d",
    "FAILED": "#dc3545",
    "CANCELLED": "#8a6d3b",
    "SKIPPED": "#adb5bd",
    "PENDING": "#b08800",
    "SCHEDULED": "#20c997",
    "REJECTED": "#a61e4d",
    "EVENT": "#198754",
    "FINISHED": "#198754",
    "TIMEOUT": "#d9730d",
    "RUN_ENDED": "#adb5bd",
}

_PRE_STYLE = "white-space: pre-wrap; max-height: 24em; overflow: auto; margin: 0;"
# Spans, not divs: a note sits inside the change page's <div class="readonly">.
_NOTE_HTML = (
    '<span style="display: block; font-size: 11px; color: var(--body-quiet-color);">{}</span>'
)
_LINE_HTML = '<span style="display: block;">{}</span>'
# A run waiting in a group.parallel may wait on several things; the list names a few.
_LISTED_WAITS = 3
# The concurrency-key filter offers at most this many of the keys executing runs hold.
_OFFERED_KEYS = 20
_NOT_EXECUTING = (RunStatus.QUEUED, RunStatus.SLEEPING, RunStatus.WAITING)
# A run flow control touched has one of these set; its page then shows a "Flow control" section.
_FLOW_FIELDS = ("flow_note", "concurrency_key", "singleton_key", "debounce_key", "batch_size")
# FlowState kinds whose time paces starts; the other kinds' rows are only locked.
_PACED_KINDS = ("throttle", "rate_limit")

_Obj = TypeVar("_Obj")


def none_as_empty(method: Callable[[Any, _Obj], Any]) -> Callable[[Any, _Obj], Any]:
    """Show the admin's empty value for None, which change pages would print as "None"."""

    @functools.wraps(method)
    def display(model_admin: Any, obj: _Obj) -> Any:
        value = method(model_admin, obj)
        return model_admin.get_empty_value_display() if value is None else value

    return display


def status_badge_html(value: str, label: str) -> SafeString:
    """Return a coloured badge for a run or step status."""
    return format_html(
        '<span style="background: {}; color: #fff; padding: 1px 6px; border-radius: 8px; '
        'font-size: 11px; white-space: nowrap;">{}</span>',
        STATUS_COLOURS.get(value, "#6c757d"),
        label,
    )


def json_html(value: Any) -> SafeString:
    """Return a JSON value pretty-printed in an escaped <pre>."""
    text = json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder)
    return format_html('<pre style="{}">{}</pre>', _PRE_STYLE, text)


def error_html(error: Any) -> SafeString:
    """Return a stored error as its name and message over the stack in a <pre>."""
    if not isinstance(error, dict):
        return json_html(error)
    return format_html(
        '<strong>{}</strong>: {}<pre style="{}">{}</pre>',
        error.get("name", "Error"),
        error.get("message", ""),
        _PRE_STYLE,
        error.get("stack", ""),
    )


def duration_text(started_at: datetime | None, finished_at: datetime | None) -> str | None:
    """Return the time between two moments as "12 ms", "3.40 s" or "0:02:05"."""
    if started_at is None or finished_at is None:
        return None
    seconds = (finished_at - started_at).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    return str(timedelta(seconds=round(seconds)))


def run_link_html(run: FunctionRun) -> SafeString:
    """Return a link to a run's admin page, labelled with its id."""
    return run_id_link_html(run.pk)


def run_id_link_html(run_id: str) -> SafeString:
    """Return a link to the admin page of the run with this id, without loading the run."""
    url = reverse("admin:inngest_django_functionrun_change", args=[quote(run_id)])
    return format_html('<a href="{}">{}</a>', url, run_id)


def defer_link_html(intent_pk: int, defer_id: str) -> SafeString:
    """Return a link to a defer's admin page, labelled with its defer id."""
    url = reverse("admin:inngest_django_deferintent_change", args=[quote(intent_pk)])
    return format_html('<a href="{}">{}</a>', url, defer_id)


def deferred_run_html(run_id: str | None, run_status: str | None, defer_status: str) -> Any:
    """Return a link to the run a defer started, "not started yet", or None."""
    if run_id is not None:
        return format_html("{} {}", run_id_link_html(run_id), RunStatus(run_status).label)
    if defer_status == DeferStatus.SCHEDULED:
        # The parent finished, but the worker's relay has not turned the outbox row into a run.
        return _("not started yet")
    return None


def moment_text(value: datetime) -> str:
    """Return a datetime as the admin shows one: in the current time zone, localized."""
    return formats.localize(timezone.template_localtime(value))


def invoke_step_subquery() -> Subquery:
    """Return the step id of the invoke that started the outer run, or NULL (one index lookup)."""
    waits = Wait.objects.filter(child_run=OuterRef("pk"), kind=WaitKind.INVOKE).order_by()
    return Subquery(waits.values("step_key")[:1])


def waiting_text(wait: Wait) -> SafeString:
    """Return what one pending wait waits for, as "waiting for app/x until ..." or an invoke."""
    if wait.kind == WaitKind.INVOKE:
        if wait.child_run_id is None:
            return format_html("{}", gettext("waiting for an invoked run"))
        return format_html(
            gettext("waiting for invoked run {}"), run_id_link_html(wait.child_run_id)
        )
    if wait.expires_at is None:
        return format_html(gettext("waiting for {}"), wait.event_name)
    return format_html(
        gettext("waiting for {} until {}"), wait.event_name, moment_text(wait.expires_at)
    )


def child_run_html(child: FunctionRun) -> SafeString:
    """Return a child run as its link, slug and status, then the defer or invoke step behind it."""
    line = format_html(
        "{} {} {}", run_link_html(child), child.function_id, child.get_status_display()
    )
    if child.via_defer is not None:  # type: ignore[attr-defined]
        return format_html(gettext("{} (defer {})"), line, child.via_defer)  # type: ignore[attr-defined]
    if child.via_step is not None:  # type: ignore[attr-defined]
        return format_html(gettext("{} (invoked at step {})"), line, child.via_step)  # type: ignore[attr-defined]
    return line


def key_text(key: str) -> str | None:
    """Return a singleton or debounce key; "-" is what a function without a key expression uses."""
    if not key:
        return None
    return gettext("- (no key: one for the whole function)") if key == "-" else key


def notes_html(notes: Sequence[Any]) -> SafeString:
    """Return short notes, one per line, in the admin's quiet help style."""
    return format_html_join("\n", _NOTE_HTML, ((note,) for note in notes))


def experiment_text(experiment: Any) -> str | None:
    """Return a stored experiment reference as "name: variant"."""
    if not isinstance(experiment, dict):
        return None
    return f"{experiment.get('experiment_name')}: {experiment.get('variant')}"


class ReadOnlyAdminMixin:
    """Allow viewing only: runs change through the engine, never through forms."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# -- events -----------------------------------------------------------------------------------


class EventNamePrefixFilter(admin.SimpleListFilter):
    """Offer each event-name prefix up to its first slash ("shop/", "inngest/")."""

    title = _("name prefix")
    parameter_name = "name_prefix"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = Event.objects.order_by().values_list("name", flat=True).distinct()
        prefixes = {name.split("/", 1)[0] + "/" if "/" in name else name for name in names}
        return [(prefix, prefix) for prefix in sorted(prefixes)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(name__startswith=self.value())
        return queryset


class TimestampSetFilter(admin.SimpleListFilter):
    """Split rows whose `field` timestamp is set (done) from those still waiting."""

    field = ""
    done_label = _("Done")
    waiting_label = _("Not yet")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", self.done_label), ("no", self.waiting_label)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class DispatchedFilter(TimestampSetFilter):
    """Split events the dispatcher has matched to triggers from those still waiting."""

    title = _("dispatched")
    parameter_name = "dispatched"
    field = "dispatched_at"
    done_label = _("Dispatched")
    waiting_label = _("Not dispatched yet")


class EventRunInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FunctionRun
    fk_name = "event"
    verbose_name = _("run started by this event")
    verbose_name_plural = _("runs started by this event")
    fields = ("run_link", "function_id", "status_badge", "created_at", "finished_at")
    readonly_fields = fields
    extra = 0

    @admin.display(description=_("Run"))
    def run_link(self, run: FunctionRun) -> SafeString:
        return run_link_html(run)

    @admin.display(description=_("Status"))
    def status_badge(self, run: FunctionRun) -> SafeString:
        return status_badge_html(run.status, run.get_status_display())


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "id", "external_id", "received_at", "dispatched_at", "run_count")
    list_filter = (EventNamePrefixFilter, DispatchedFilter)
    # get_search_results replaces Django's case-insensitive scans with indexed lookups.
    search_fields = ("id", "name", "external_id")
    search_help_text = _("An event id, a producer id, or the start of an event name.")
    show_full_result_count = False
    fields = ("id", "name", "external_id", "ts", "received_at", "dispatched_at", "pretty_data")
    readonly_fields = fields
    inlines = (EventRunInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(run_count=Count("runs"))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(pk=term.upper()) | Q(external_id=term) | Q(name__startswith=term)
        return queryset.filter(match), False

    @admin.display(description=_("Runs"), ordering="run_count")
    def run_count(self, event: Event) -> int:
        return event.run_count  # type: ignore[attr-defined]

    @admin.display(description=_("Data"))
    def pretty_data(self, event: Event) -> SafeString:
        return json_html(event.data)


# -- runs -------------------------------------------------------------------------------------


class FunctionFilter(admin.SimpleListFilter):
    """Offer every registered function slug plus any slug that has runs in the database."""

    title = _("function")
    parameter_name = "function"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        slugs = {function.id for function in default_registry}
        # order_by() first: the default ordering would otherwise join the DISTINCT.
        slugs.update(
            FunctionRun.objects.order_by().values_list("function_id", flat=True).distinct()
        )
        return [(slug, slug) for slug in sorted(slugs)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(function_id=self.value())
        return queryset


class StepRunInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StepRun
    fields = (
        "step_key",
        "op",
        "status_badge",
        "attempts",
        "output_or_error",
        "started_at",
        "finished_at",
        "duration",
        "wake_at",
    )
    readonly_fields = fields
    ordering = ("id",)
    extra = 0

    @admin.display(description=_("Status"))
    def status_badge(self, step: StepRun) -> SafeString:
        return status_badge_html(step.status, step.get_status_display())

    @admin.display(description=_("Output or error"))
    @none_as_empty
    def output_or_error(self, step: StepRun) -> SafeString | None:
        if step.error:
            return error_html(step.error)
        return json_html(step.output) if step.output is not None else None

    @admin.display(description=_("Duration"))
    @none_as_empty
    def duration(self, step: StepRun) -> str | None:
        return duration_text(step.started_at, step.finished_at)


class WaitInline(ReadOnlyAdminMixin, admin.TabularInline):
    """What the run waits for or waited for: events, invoked runs and cancel rules."""

    model = Wait
    fk_name = "run"
    fields = (
        "kind",
        "step_key",
        "event_name",
        "match",
        "expires_at",
        "resolved_at",
        "outcome_badge",
        "event_link",
        "child_run_link",
    )
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Pending first; the invoked run's slug and status joined in, not a query per wait.
        return (
            super()
            .get_queryset(request)
            .annotate(
                child_function_id=F("child_run__function_id"),
                child_status=F("child_run__status"),
            )
            .order_by(F("resolved_at").asc(nulls_first=True), "id")
        )

    @admin.display(description=_("Match"))
    @none_as_empty
    def match(self, wait: Wait) -> SafeString | None:
        lines: list[SafeString] = []
        if wait.match_value == NO_MATCH:
            # The trigger event lacked the field, so no event can match this wait.
            text = gettext("{} is missing from the trigger event: nothing matches")
            lines.append(format_html(text, wait.match_key))
        elif wait.match_key:
            lines.append(format_html("{} = {}", wait.match_key, wait.match_value))
        if wait.expression:
            lines.append(format_html(gettext("if <code>{}</code>"), wait.expression))
        if not lines:
            return None
        return format_html_join("\n", _LINE_HTML, ((line,) for line in lines))

    @admin.display(description=_("Outcome"))
    def outcome_badge(self, wait: Wait) -> SafeString:
        if wait.resolved_at is None:
            return status_badge_html("PENDING", gettext("Pending"))
        return status_badge_html(wait.outcome, wait.get_outcome_display())

    @admin.display(description=_("Matched event"))
    @none_as_empty
    def event_link(self, wait: Wait) -> SafeString | None:
        if wait.event_id is None:
            return None
        url = reverse("admin:inngest_django_event_change", args=[quote(wait.event_id)])
        return format_html('<a href="{}">{}</a>', url, wait.event_id)

    @admin.display(description=_("Invoked run"))
    @none_as_empty
    def child_run_link(self, wait: Wait) -> SafeString | None:
        if wait.child_run_id is None:
            return None
        return format_html(
            "{} {} {}",
            run_id_link_html(wait.child_run_id),
            wait.child_function_id,  # type: ignore[attr-defined]
            RunStatus(wait.child_status).label,  # type: ignore[attr-defined]
        )


class StartedByFilter(admin.SimpleListFilter):
    """Split runs by what started them: a defer, an invoke, cron, or any other event."""

    title = _("started by")
    parameter_name = "started_by"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("defer", _("Defer")),
            ("invoke", _("Invoke")),
            ("cron", _("Cron")),
            ("event", _("Event")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        not_deferred = queryset.filter(defer_intent__isnull=True)
        if self.value() == "defer":
            return queryset.filter(defer_intent__isnull=False)
        if self.value() == "invoke":
            return not_deferred.filter(event__name=INVOKED_EVENT)
        if self.value() == "cron":
            return not_deferred.filter(event__name=SCHEDULED_EVENT)
        if self.value() == "event":
            return not_deferred.exclude(event__name__in=[SCHEDULED_EVENT, INVOKED_EVENT])
        return queryset


class FlowControlFilter(admin.SimpleListFilter):
    """Split runs flow control skipped from those it delayed or reordered (noted ones)."""

    title = _("flow control")
    parameter_name = "flow"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("skipped", _("Skipped by flow control")),
            ("delayed", _("Delayed by flow control")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        noted = queryset.exclude(flow_note="")
        if self.value() == "skipped":
            return noted.filter(status=RunStatus.SKIPPED)
        if self.value() == "delayed":
            return noted.exclude(status=RunStatus.SKIPPED)
        return queryset


class ConcurrencyKeyFilter(admin.SimpleListFilter):
    """Offer the concurrency keys executing runs hold; any key can be given in the URL."""

    title = _("concurrency key")
    parameter_name = "concurrency_key"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        keys = set(held_concurrency_keys()[:_OFFERED_KEYS])
        if self.value():
            keys.add(self.value())  # so a key taken from a run page stays shown as chosen
        return [(key, key) for key in sorted(keys)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(concurrency_match(self.value()))
        return queryset


def concurrency_match(key: str) -> Q:
    """Return a filter for runs that use `key` as either of their concurrency keys."""
    return Q(concurrency_key=key) | Q(concurrency_key_2=key)


def held_concurrency_keys() -> QuerySet:
    """Return the distinct keys executing runs hold, read from the partial indexes only."""
    running = FunctionRun.objects.filter(status=RunStatus.RUNNING).order_by()
    first = running.exclude(concurrency_key="").values_list("concurrency_key", flat=True)
    second = running.exclude(concurrency_key_2="").values_list("concurrency_key_2", flat=True)
    return first.union(second).order_by()


def running_on_key(key: str, now: datetime) -> int:
    """Return how many slots of `key` executing runs hold: one count over both key indexes."""
    # Counted as the claim counts: per key column, live leases only; each branch is worded as
    # its partial index's condition, so it reads that index and nothing else.
    executing = FunctionRun.objects.filter(status=RunStatus.RUNNING, locked_until__gt=now)
    first = executing.exclude(concurrency_key="").filter(concurrency_key=key)
    second = executing.exclude(concurrency_key_2="").filter(concurrency_key_2=key)
    return first.order_by().values("pk").union(second.order_by().values("pk"), all=True).count()


def concurrency_html(run: FunctionRun, now: datetime) -> SafeString | None:
    """Return a run's concurrency keys with their limits and use; say if the run waits for one."""
    slots = [
        (key, limit)
        for key, limit in (
            (run.concurrency_key, run.concurrency_limit),
            (run.concurrency_key_2, run.concurrency_limit_2),
        )
        if key
    ]
    if not slots:
        return None
    # A run that is due but not executing is claimed only once each of its keys has room.
    due = run.status in _NOT_EXECUTING and run.available_at <= now
    lines, full = [], []
    url = reverse("admin:inngest_django_functionrun_changelist")
    for key, limit in slots:
        running = running_on_key(key, now)
        link = format_html('<a href="{}?{}">{}</a>', url, urlencode({"concurrency_key": key}), key)
        lines.append(format_html(gettext("{} limit {}: {} running now"), link, limit, running))
        if due and running >= limit:
            full.append(
                format_html(
                    gettext("waiting for a concurrency slot: key {} has {} of {} running"),
                    key,
                    running,
                    limit,
                )
            )
    return format_html_join("\n", _LINE_HTML, ((line,) for line in (*full, *lines)))


class DeferColumnsMixin:
    """Columns a defer shows in the run page's inline and in its own admin."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The deferred run's id and status only: one join, not a query (or a whole row) per defer.
        return (
            super()  # type: ignore[misc]
            .get_queryset(request)
            .annotate(
                deferred_run_pk=F("deferred_run__id"),
                deferred_run_status=F("deferred_run__status"),
            )
        )

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, intent: DeferIntent) -> SafeString:
        return status_badge_html(intent.status, intent.get_status_display())

    @admin.display(description=_("Payload"))
    @none_as_empty
    def pretty_payload(self, intent: DeferIntent) -> SafeString | None:
        return json_html(intent.payload) if intent.payload is not None else None

    @admin.display(description=_("Experiment"))
    @none_as_empty
    def experiment_variant(self, intent: DeferIntent) -> str | None:
        return experiment_text(intent.experiment)

    @admin.display(description=_("Deferred run"))
    @none_as_empty
    def deferred_run_link(self, intent: DeferIntent) -> Any:
        return deferred_run_html(
            intent.deferred_run_pk,  # type: ignore[attr-defined]
            intent.deferred_run_status,  # type: ignore[attr-defined]
            intent.status,
        )


class DeferIntentInline(DeferColumnsMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = DeferIntent
    fk_name = "run"
    fields = (
        "defer_link",
        "function_id",
        "status_badge",
        "pretty_payload",
        "reason",
        "experiment_variant",
        "deferred_run_link",
    )
    readonly_fields = fields
    ordering = ("id",)
    extra = 0

    @admin.display(description=_("Defer id"))
    def defer_link(self, intent: DeferIntent) -> SafeString:
        return defer_link_html(intent.pk, intent.defer_id)


@admin.register(FunctionRun)
class FunctionRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "function_id",
        "status_badge",
        "started_by",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
        "attempt",
        "locked_by",
    )
    list_filter = (
        "status",
        FunctionFilter,
        StartedByFilter,
        FlowControlFilter,
        ConcurrencyKeyFilter,
    )
    # get_search_results replaces Django's case-insensitive scans with indexed lookups.
    search_fields = ("id", "event__id")
    search_help_text = _(
        "A run id, the id of the event that started runs, or a concurrency key (function:value)."
    )
    show_full_result_count = False
    actions = ("cancel_runs",)
    change_form_template = "admin/inngest_django/functionrun/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "function_id",
                    "status_badge",
                    "started_by",
                    "event_link",
                    "parent_run_link",
                    "child_runs",
                    "attempt",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration",
                )
            },
        ),
        (_("Result"), {"fields": ("pretty_output", "pretty_error")}),
        (_("Lease"), {"fields": ("locked_by", "locked_until", "available_at")}),
    )
    # Shown only for a cancelled run, or one asked to stop: see get_fieldsets.
    cancellation_fieldset = (
        _("Cancellation"),
        {"fields": ("cancel_requested_at", "cancel_reason_text")},
    )
    # Shown only for a run flow control touched: see get_fieldsets.
    flow_control_fieldset = (
        _("Flow control"),
        {"fields": ("flow_note_text", "concurrency", "singleton_key_text", "debounce", "batch")},
    )
    readonly_fields = tuple(
        name
        for _, options in (*fieldsets, cancellation_fieldset, flow_control_fieldset)
        for name in options["fields"]
    )
    inlines = (StepRunInline, WaitInline, DeferIntentInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # What "Started by" and the waiting note show, for a page of runs in two queries.
        pending_waits = (
            Wait.objects.pending()
            .exclude(kind=WaitKind.CANCEL)
            .only("run", "kind", "event_name", "child_run", "expires_at")
            .order_by("id")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                started_by_defer_id=F("defer_intent__defer_id"),
                trigger_name=F("event__name"),
                invoked_at_step=invoke_step_subquery(),
            )
            .prefetch_related(Prefetch("waits", queryset=pending_waits, to_attr="pending_waits"))
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if ":" in term:
            # Ids never hold a colon; concurrency keys are "<function or scope>:<value>".
            return queryset.filter(concurrency_match(term)), False
        term = term.upper()
        return queryset.filter(Q(pk=term) | Q(event_id=term)), False

    def get_fieldsets(self, request: HttpRequest, obj: FunctionRun | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        extra = []
        if obj.status == RunStatus.CANCELLED or obj.cancel_requested_at is not None:
            extra.append(self.cancellation_fieldset)
        if any(getattr(obj, name) for name in _FLOW_FIELDS):
            extra.append(self.flow_control_fieldset)
        return (fieldsets[0], *extra, *fieldsets[1:])

    # -- cancelling -------------------------------------------------------------------------

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Return True if the user may ask runs to stop (superusers always may)."""
        return request.user.has_perm(f"{self.opts.app_label}.cancel_functionrun")

    def get_urls(self) -> list[URLPattern]:
        cancel = path(
            "<path:object_id>/cancel/",
            self.admin_site.admin_view(self.cancel_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_cancel",
        )
        # First: the catch-all "<path:object_id>/" redirect would otherwise swallow it.
        return [cancel, *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: FunctionRun | None = None,
    ) -> HttpResponse:
        if (
            obj is not None
            and obj.status not in FINISHED_STATUSES
            and obj.cancel_requested_at is None
            and self.has_cancel_permission(request)
        ):
            context["cancel_run_url"] = reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_cancel",
                args=[quote(obj.pk)],
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask one run to stop (the "Cancel run" button), then show its page again."""
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404(gettext("No function run has this id."))
        self.cancel_and_report(request, [run])
        return HttpResponseRedirect(
            reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[quote(run.pk)],
            )
        )

    @admin.action(description=_("Cancel selected runs"), permissions=["cancel"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet) -> None:
        # function_id for the history entry's label; no waits: nothing here shows them.
        runs = queryset.prefetch_related(None).only("function_id", "status", "cancel_requested_at")
        self.cancel_and_report(request, runs)

    def cancel_and_report(self, request: HttpRequest, runs: Iterable[FunctionRun]) -> None:
        """Ask each unfinished run to stop through cancel_run, and say what happened."""
        asked = finished = already_asked = 0
        reason = f"admin: cancelled by {request.user.get_username()}"
        for run in runs:
            if run.status in FINISHED_STATUSES:
                finished += 1
            elif run.cancel_requested_at is not None:
                already_asked += 1
            elif cancel_run(run.pk, reason=reason):
                asked += 1
                # The admin's history is where an operator looks for who stopped a run.
                self.log_change(request, run, gettext("Asked the run to stop."))
            else:
                # It finished, or someone else asked, since the page was loaded.
                run.refresh_from_db(fields=["status"])
                if run.status in FINISHED_STATUSES:
                    finished += 1
                else:
                    already_asked += 1
        # Literal ngettext calls, so makemessages still finds the strings.
        outcomes = (
            (
                asked,
                messages.SUCCESS,
                ngettext(
                    "%(count)d run was asked to stop; a worker cancels it at its next step.",
                    "%(count)d runs were asked to stop; workers cancel them at their next step.",
                    asked,
                ),
            ),
            (
                already_asked,
                messages.WARNING,
                ngettext(
                    "%(count)d run had already been asked to stop.",
                    "%(count)d runs had already been asked to stop.",
                    already_asked,
                ),
            ),
            (
                finished,
                messages.WARNING,
                ngettext(
                    "%(count)d run had already finished.",
                    "%(count)d runs had already finished.",
                    finished,
                ),
            ),
        )
        for count, level, message in outcomes:
            if count:
                self.message_user(request, message % {"count": count}, level)

    # -- columns and fields -----------------------------------------------------------------

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, run: FunctionRun) -> SafeString:
        badge = status_badge_html(run.status, run.get_status_display())
        notes: list[Any] = []
        if run.status == RunStatus.WAITING:
            waits = getattr(run, "pending_waits", [])
            notes.extend(waiting_text(wait) for wait in waits[:_LISTED_WAITS])
            if len(waits) > _LISTED_WAITS:
                notes.append(gettext("and %(count)d more") % {"count": len(waits) - _LISTED_WAITS})
        if run.flow_note:
            notes.append(run.flow_note)
        if run.cancel_requested_at is not None and run.status not in FINISHED_STATUSES:
            notes.append(gettext("asked to stop"))
        return format_html("{}\n{}", badge, notes_html(notes)) if notes else badge

    @admin.display(description=_("Duration"))
    @none_as_empty
    def duration(self, run: FunctionRun) -> str | None:
        return duration_text(run.started_at, run.finished_at)

    @admin.display(description=_("Started by"))
    def started_by(self, run: FunctionRun) -> Any:
        if run.defer_intent_id is not None:
            defer = defer_link_html(run.defer_intent_id, run.started_by_defer_id)  # type: ignore[attr-defined]
            if run.parent_run_id is None:
                return format_html(gettext("defer {}"), defer)
            return format_html(
                gettext("defer {} of {}"), defer, run_id_link_html(run.parent_run_id)
            )
        name = run.trigger_name  # type: ignore[attr-defined]
        if name == INVOKED_EVENT:
            step = run.invoked_at_step  # type: ignore[attr-defined]
            if run.parent_run_id is None:
                # The caller was deleted; its wait, and so the step id, went with it.
                return gettext("invoke")
            caller = run_id_link_html(run.parent_run_id)
            if step is None:
                return format_html(gettext("invoked by {}"), caller)
            return format_html(gettext("invoked by {} at step {}"), caller, step)
        if name == SCHEDULED_EVENT:
            return gettext("cron")
        return format_html(gettext("event {}"), name)

    @admin.display(description=_("Trigger event"))
    def event_link(self, run: FunctionRun) -> SafeString:
        url = reverse("admin:inngest_django_event_change", args=[quote(run.event_id)])
        return format_html('<a href="{}">{}</a>', url, run.event)

    @admin.display(description=_("Parent run"))
    @none_as_empty
    def parent_run_link(self, run: FunctionRun) -> SafeString | None:
        return run_id_link_html(run.parent_run_id) if run.parent_run_id else None

    @admin.display(description=_("Child runs"))
    @none_as_empty
    def child_runs(self, run: FunctionRun) -> SafeString | None:
        children = (
            # parent_run too: the related manager reads it to attach this run to each child.
            run.child_runs.only("id", "function_id", "status", "parent_run")
            .annotate(via_defer=F("defer_intent__defer_id"), via_step=invoke_step_subquery())
            .order_by("created_at")
        )
        if not children:
            return None
        return format_html_join(
            "\n", "<div>{}</div>", ((child_run_html(child),) for child in children)
        )

    @admin.display(description=_("Cancel reason"))
    @none_as_empty
    def cancel_reason_text(self, run: FunctionRun) -> str | None:
        return run.cancel_reason or None

    @admin.display(description=_("Note"))
    @none_as_empty
    def flow_note_text(self, run: FunctionRun) -> str | None:
        return run.flow_note or None

    @admin.display(description=_("Concurrency"))
    @none_as_empty
    def concurrency(self, run: FunctionRun) -> SafeString | None:
        return concurrency_html(run, timezone.now())

    @admin.display(description=_("Singleton key"))
    @none_as_empty
    def singleton_key_text(self, run: FunctionRun) -> str | None:
        return key_text(run.singleton_key)

    @admin.display(description=_("Debounce"))
    @none_as_empty
    def debounce(self, run: FunctionRun) -> str | None:
        if not run.debounce_key:
            return None
        if run.debounce_deadline is None:
            return gettext("key %(key)s, no timeout") % {"key": key_text(run.debounce_key)}
        return gettext("key %(key)s, starts by %(deadline)s at the latest") % {
            "key": key_text(run.debounce_key),
            "deadline": moment_text(run.debounce_deadline),
        }

    @admin.display(description=_("Batch"))
    @none_as_empty
    def batch(self, run: FunctionRun) -> str | None:
        if not run.batch_size:
            return None
        size = ngettext("%(count)d event", "%(count)d events", run.batch_size) % {
            "count": run.batch_size
        }
        if not run.batch_key:
            return size
        return gettext("%(size)s, still taking events for key %(key)s") % {
            "size": size,
            "key": key_text(run.batch_key),
        }

    @admin.display(description=_("Output"))
    @none_as_empty
    def pretty_output(self, run: FunctionRun) -> SafeString | None:
        return json_html(run.output) if run.output is not None else None

    @admin.display(description=_("Error"))
    @none_as_empty
    def pretty_error(self, run: FunctionRun) -> SafeString | None:
        return error_html(run.error) if run.error else None


# -- defers and their outbox ----------------------------------------------------------------


class DeferTargetFilter(admin.SimpleListFilter):
    """Offer every registered deferred function slug plus any slug that has defers stored."""

    title = _("deferred function")
    parameter_name = "target"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        slugs = {
            function.id for function in default_registry if isinstance(function, DeferredFunction)
        }
        slugs.update(
            DeferIntent.objects.order_by().values_list("function_id", flat=True).distinct()
        )
        return [(slug, slug) for slug in sorted(slugs)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(function_id=self.value())
        return queryset


@admin.register(DeferIntent)
class DeferIntentAdmin(DeferColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "defer_id",
        "run_link",
        "function_id",
        "status_badge",
        "deferred_run_link",
        "created_at",
    )
    list_filter = ("status", DeferTargetFilter)
    # get_search_results replaces Django's case-insensitive scans with exact lookups.
    search_fields = ("defer_id", "run__id")
    search_help_text = _("A defer id, or the id of the run that deferred.")
    show_full_result_count = False
    ordering = ("-id",)
    fields = (
        "defer_id",
        "run_link",
        "function_id",
        "status_badge",
        "reason",
        "pretty_payload",
        "size",
        "experiment_variant",
        "deferred_run_link",
        "outbox_state",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(defer_id=term) | Q(run_id=term.upper())), False

    @admin.display(description=_("Run"), ordering="run")
    def run_link(self, intent: DeferIntent) -> SafeString:
        return run_id_link_html(intent.run_id)

    @admin.display(description=_("Outbox"))
    @none_as_empty
    def outbox_state(self, intent: DeferIntent) -> Any:
        message = OutboxMessage.objects.filter(intent=intent).first()
        if message is None:
            return None
        url = reverse("admin:inngest_django_outboxmessage_change", args=[quote(message.pk)])
        if message.relayed_at is None:
            return format_html('<a href="{}">{}</a>', url, gettext("not relayed yet"))
        return format_html('<a href="{}">{}</a>', url, gettext("relayed"))


class RelayedFilter(TimestampSetFilter):
    """Split outbox rows the relay has turned into runs from those still waiting."""

    title = _("relayed")
    parameter_name = "relayed"
    field = "relayed_at"
    done_label = _("Relayed")
    waiting_label = _("Not relayed yet")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "defer_link", "run_link", "created_at", "relayed_at", "deferred_run_link")
    list_filter = (RelayedFilter,)
    # get_search_results replaces Django's case-insensitive scans with exact lookups.
    search_fields = ("intent__defer_id", "intent__run__id")
    search_help_text = _("A defer id, or the id of the run that deferred.")
    show_full_result_count = False
    ordering = ("-id",)
    fields = ("defer_link", "run_link", "created_at", "relayed_at", "deferred_run_link")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The intent's small columns only: its payload may be megabytes.
        return (
            super()
            .get_queryset(request)
            .annotate(
                defer_id=F("intent__defer_id"),
                target=F("intent__function_id"),
                intent_status=F("intent__status"),
                run_id=F("intent__run_id"),
                deferred_run_pk=F("intent__deferred_run__id"),
                deferred_run_status=F("intent__deferred_run__status"),
            )
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(intent__defer_id=term) | Q(intent__run_id=term.upper())
        return queryset.filter(match), False

    @admin.display(description=_("Defer"), ordering="intent")
    def defer_link(self, message: OutboxMessage) -> SafeString:
        return format_html(
            "{} &rarr; {}",
            defer_link_html(message.intent_id, message.defer_id),  # type: ignore[attr-defined]
            message.target,  # type: ignore[attr-defined]
        )

    @admin.display(description=_("Run"))
    def run_link(self, message: OutboxMessage) -> SafeString:
        return run_id_link_html(message.run_id)  # type: ignore[attr-defined]

    @admin.display(description=_("Deferred run"))
    @none_as_empty
    def deferred_run_link(self, message: OutboxMessage) -> Any:
        return deferred_run_html(
            message.deferred_run_pk,  # type: ignore[attr-defined]
            message.deferred_run_status,  # type: ignore[attr-defined]
            message.intent_status,  # type: ignore[attr-defined]
        )


# -- cron, idempotency and flow-control state ------------------------------------------------


@admin.register(CronSchedule)
class CronScheduleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("function_id", "cron", "next_tick_at", "last_tick_at")
    search_fields = ("function_id",)
    ordering = ("function_id", "cron")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("function_id", "key", "expires_at")
    search_fields = ("=key", "=function_id")
    ordering = ("-expires_at",)


@admin.register(FlowState)
class FlowStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Pacing rows of throttles and rate limits, and the rows other options only lock."""

    list_display = ("function_id", "kind", "key", "tat", "ahead")
    list_filter = ("kind",)
    search_fields = ("=function_id", "=key")
    search_help_text = _("A function slug or a key, exactly.")
    ordering = ("function_id", "kind", "key")
    fields = ("function_id", "kind", "key", "tat", "ahead")
    readonly_fields = fields

    @admin.display(description=_("Ahead of now"))
    @none_as_empty
    def ahead(self, state: FlowState) -> str | None:
        if state.kind not in _PACED_KINDS:
            return None  # a row locked to serialise decisions for a key; its time means nothing
        # How far pacing runs ahead: the backlog a throttle spreads, or how full a window is.
        now = timezone.now()
        if state.tat <= now:
            return gettext("idle")
        return duration_text(now, state.tat)
