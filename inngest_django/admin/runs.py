"""The run list and run page: columns, fieldsets, links between runs."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..enums import FINISHED_STATUSES, RunStatus, WaitKind
from ..functions import INVOKED_EVENT, SCHEDULED_EVENT
from ..models import Event, FunctionRun, Wait
from ..payload_access import can_view_payloads, payloads_restricted
from .defers import DeferIntentInline
from .display import (
    defer_link_html,
    error_html,
    event_id_link_html,
    json_html,
    key_text,
    none_as_empty,
    notes_html,
    run_id_link_html,
    run_link_html,
    status_badge_html,
)
from .filters import (
    ConcurrencyKeyFilter,
    CreatedWithinFilter,
    DeferredFilter,
    FlowControlFilter,
    FunctionFilter,
    StartedByFilter,
)
from .flow import concurrency_html, concurrency_match
from .function_page import function_page_urls
from .functions import functions_view
from .inlines import StepRunInline, WaitInline
from .lookups import NulSafeLookupsMixin
from .payloads import (
    PayloadVisibilityMixin,
    hidden_payload_html,
    payloads_visible,
    unreadable_as_note,
)
from .readonly import ReadOnlyAdminMixin
from .replay import replay_urls
from .retrying import RunStatusFilter, shown_status
from .run_actions import RunActionsMixin
from .run_columns import RunColumnsMixin
from .search import IndexedSearchMixin
from .timeline import build_timeline
from .times import duration_text, moment_text

# A run waiting in a group.parallel may wait on several things; the list names a few.
_LISTED_WAITS = 3
# A run flow control touched has one of these set; its page then shows a "Flow control" section.
_FLOW_FIELDS = ("flow_note", "concurrency_key", "singleton_key", "debounce_key", "batch_size")
# Run and event ids are ULIDs; any other search term is taken as the start of an event name.
_ULID = re.compile(r"[0-9A-Za-z]{26}")


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


@admin.register(FunctionRun)
class FunctionRunAdmin(
    PayloadVisibilityMixin,
    IndexedSearchMixin,
    RunActionsMixin,
    RunColumnsMixin,
    ReadOnlyAdminMixin,
    NulSafeLookupsMixin,
    admin.ModelAdmin,
):
    list_display = (
        "id",
        "function_id",
        "status_badge",
        "started_by",
        "created",
        "started",
        "finished",
        "duration",
        "attempt_of",
        "next_attempt",
        "last_error",
        "locked_by",
    )
    list_filter = (
        ("status", RunStatusFilter),
        FunctionFilter,
        CreatedWithinFilter,
        DeferredFilter,
        StartedByFilter,
        FlowControlFilter,
        ConcurrencyKeyFilter,
    )
    # search_match replaces Django's case-insensitive scans with indexed lookups.
    search_fields = ("id", "event__id", "event__name")
    search_help_text = _(
        "A run id, the id of the event that started runs, the start of that event's name, or a "
        "concurrency key (function:value)."
    )
    show_full_result_count = False
    change_form_template = "admin/inngest_django/functionrun/change_form.html"
    change_list_template = "admin/inngest_django/functionrun/change_list.html"
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
                    "rerun_of_link",
                    "reruns_links",
                    "attempt_of",
                    "next_attempt",
                    "manual_retries",
                    "created",
                    "started",
                    "finished",
                    "duration",
                )
            },
        ),
        (_("Result"), {"fields": ("pretty_output", "pretty_error")}),
        (_("Lease"), {"fields": ("locked_by", "lease_until", "due_at", "parked_from")}),
    )
    # Shown only for a cancelled run, or one asked to stop: see get_fieldsets.
    cancellation_fieldset = (
        _("Cancellation"),
        {"fields": ("cancel_requested", "cancel_reason_text")},
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

    def search_match(self, term: str) -> Q:
        if ":" in term and not payloads_restricted():
            # Ids never hold a colon; concurrency keys are "<function or scope>:<value>". With
            # encryption on, keys are hashes of payload values: no search may probe them.
            return concurrency_match(term)
        if _ULID.fullmatch(term):
            term = term.upper()
            return Q(pk=term) | Q(event_id=term)
        # A semi-join on the event-name index, not an OR across the join, so both stay indexed.
        events = Event.objects.filter(name__startswith=term).order_by().values("pk")
        return Q(event_id__in=events)

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

    # -- pages ------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        functions = path(
            "functions/",
            self.admin_site.admin_view(self.functions_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_functions",
        )
        # First: the catch-all "<path:object_id>/" redirect would otherwise swallow them.
        pages = [functions, *function_page_urls(self), *replay_urls(self)]
        return [*pages, *self.run_action_urls(), *super().get_urls()]

    def functions_view(self, request: HttpRequest) -> HttpResponse:
        """Show every registered function with its options and its runs of the last 24 hours."""
        return functions_view(self, request)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "functions_url": self.functions_url()}
        return super().changelist_view(request, extra_context)

    def functions_url(self) -> str:
        """Return the functions page's URL."""
        opts = self.opts
        return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_functions")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: FunctionRun | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.run_button_urls(request, obj))
            context["timeline"] = build_timeline(
                obj, payloads_visible=can_view_payloads(request.user)
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- columns and fields -----------------------------------------------------------------

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, run: FunctionRun) -> SafeString:
        badge = status_badge_html(*shown_status(run))
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
        return event_id_link_html(run.event_id, run.event)

    @admin.display(description=_("Rerun of"))
    @none_as_empty
    def rerun_of_link(self, run: FunctionRun) -> SafeString | None:
        return run_id_link_html(run.rerun_of_id) if run.rerun_of_id else None

    @admin.display(description=_("Reruns"))
    @none_as_empty
    def reruns_links(self, run: FunctionRun) -> SafeString | None:
        reruns = run.reruns.only("id", "status", "rerun_of").order_by("created_at")
        if not reruns:
            return None
        return format_html_join(
            "\n",
            "<div>{} {}</div>",
            ((run_link_html(rerun), rerun.get_status_display()) for rerun in reruns),
        )

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
    @unreadable_as_note
    def pretty_output(self, run: FunctionRun) -> SafeString | None:
        if run.output is None:
            return None
        return json_html(run.output) if payloads_visible(run) else hidden_payload_html()

    @admin.display(description=_("Error"))
    @none_as_empty
    @unreadable_as_note
    def pretty_error(self, run: FunctionRun) -> SafeString | None:
        if not run.error:
            return None
        return error_html(run.error) if payloads_visible(run) else hidden_payload_html()
