"""Read-only admins for debugging: events, runs with their steps, cron schedules and keys."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .models import CronSchedule, Event, FunctionRun, IdempotencyKey, StepRun
from .registry import default_registry

# Badge colours by status value; run and step statuses share the names they have in common.
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
}

_PRE_STYLE = "white-space: pre-wrap; max-height: 24em; overflow: auto; margin: 0;"


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
    url = reverse("admin:inngest_django_functionrun_change", args=[quote(run.pk)])
    return format_html('<a href="{}">{}</a>', url, run.pk)


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


class DispatchedFilter(admin.SimpleListFilter):
    """Split events the dispatcher has matched to triggers from those still waiting."""

    title = _("dispatched")
    parameter_name = "dispatched"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Dispatched")), ("no", _("Not dispatched yet"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(dispatched_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(dispatched_at__isnull=True)
        return queryset


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
    def output_or_error(self, step: StepRun) -> SafeString | None:
        if step.error:
            return error_html(step.error)
        return json_html(step.output) if step.output is not None else None

    @admin.display(description=_("Duration"))
    def duration(self, step: StepRun) -> str | None:
        return duration_text(step.started_at, step.finished_at)


@admin.register(FunctionRun)
class FunctionRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "function_id",
        "status_badge",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
        "attempt",
        "locked_by",
    )
    list_filter = ("status", FunctionFilter)
    # get_search_results replaces Django's case-insensitive scans with indexed lookups.
    search_fields = ("id", "event__id")
    search_help_text = _("A run id, or the id of the event that started runs.")
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "function_id",
                    "status_badge",
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
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])
    inlines = (StepRunInline,)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        return queryset.filter(Q(pk=term) | Q(event_id=term)), False

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, run: FunctionRun) -> SafeString:
        return status_badge_html(run.status, run.get_status_display())

    @admin.display(description=_("Duration"))
    def duration(self, run: FunctionRun) -> str | None:
        return duration_text(run.started_at, run.finished_at)

    @admin.display(description=_("Trigger event"))
    def event_link(self, run: FunctionRun) -> SafeString:
        url = reverse("admin:inngest_django_event_change", args=[quote(run.event_id)])
        return format_html('<a href="{}">{}</a>', url, run.event)

    @admin.display(description=_("Parent run"))
    def parent_run_link(self, run: FunctionRun) -> SafeString | None:
        return run_link_html(run.parent_run) if run.parent_run_id else None

    @admin.display(description=_("Child runs"))
    def child_runs(self, run: FunctionRun) -> SafeString | None:
        children = run.child_runs.order_by("created_at")
        if not children:
            return None
        return format_html_join(
            "",
            "<div>{} {} {}</div>",
            (
                (run_link_html(child), child.function_id, child.get_status_display())
                for child in children
            ),
        )

    @admin.display(description=_("Output"))
    def pretty_output(self, run: FunctionRun) -> SafeString | None:
        return json_html(run.output) if run.output is not None else None

    @admin.display(description=_("Error"))
    def pretty_error(self, run: FunctionRun) -> SafeString | None:
        return error_html(run.error) if run.error else None


# -- cron and idempotency -------------------------------------------------------------------


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
