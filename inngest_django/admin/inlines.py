"""The run page's step and wait tables."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..enums import RunStatus, StepStatus
from ..models import StepRun, Wait
from ..waits import NO_MATCH
from .display import (
    LINE_HTML,
    error_html,
    json_html,
    none_as_empty,
    run_id_link_html,
    status_badge_html,
)
from .payloads import (
    PayloadVisibilityMixin,
    hidden_payload_html,
    payloads_visible,
    unreadable_as_note,
)
from .readonly import ReadOnlyAdminMixin, RunPartInlineMixin
from .times import duration_text, moment_column


class StepRunInline(
    PayloadVisibilityMixin, RunPartInlineMixin, ReadOnlyAdminMixin, admin.TabularInline
):
    model = StepRun
    fields = (
        "step_key",
        "op",
        "status_badge",
        "attempts",
        "output_or_error",
        "started",
        "finished",
        "duration",
        "wakes",
    )
    readonly_fields = fields
    ordering = ("id",)
    extra = 0
    started = moment_column("started_at", _("Started at"))
    finished = moment_column("finished_at", _("Finished at"))
    wakes = moment_column("wake_at", _("Wakes at"))

    @admin.display(description=_("Status"))
    def status_badge(self, step: StepRun) -> SafeString:
        return status_badge_html(step.status, step.get_status_display())

    @admin.display(description=_("Output or error"))
    @none_as_empty
    @unreadable_as_note
    def output_or_error(self, step: StepRun) -> SafeString | None:
        if step.error is None and step.output is None:
            return None
        if not payloads_visible(step):
            return hidden_payload_html()
        # A completed step's error keeps only its failed attempts, which the timeline shows.
        if step.error and step.status != StepStatus.COMPLETED:
            return error_html(step.error)
        return json_html(step.output) if step.output is not None else None

    @admin.display(description=_("Duration"))
    @none_as_empty
    def duration(self, step: StepRun) -> str | None:
        return duration_text(step.started_at, step.finished_at)


class WaitInline(
    PayloadVisibilityMixin, RunPartInlineMixin, ReadOnlyAdminMixin, admin.TabularInline
):
    """What the run waits for or waited for: events, invoked runs and cancel rules."""

    model = Wait
    fk_name = "run"
    fields = (
        "kind",
        "step_key",
        "event_name",
        "match",
        "expires",
        "resolved",
        "outcome_badge",
        "event_link",
        "child_run_link",
    )
    readonly_fields = fields
    extra = 0
    expires = moment_column("expires_at", _("Expires at"))
    resolved = moment_column("resolved_at", _("Resolved at"))

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
    @unreadable_as_note
    def match(self, wait: Wait) -> SafeString | None:
        lines: list[SafeString] = []
        if wait.match_value == NO_MATCH:
            # The trigger event lacked the field, so no event can match this wait.
            text = gettext("{} is missing from the trigger event: nothing matches")
            lines.append(format_html(text, wait.match_key))
        elif wait.match_key and not payloads_visible(wait):
            # The value is the trigger event's, a piece of its data.
            lines.append(format_html("{} = {}", wait.match_key, hidden_payload_html()))
        elif wait.match_key:
            lines.append(format_html("{} = {}", wait.match_key, wait.match_value))
        if wait.expression:
            lines.append(format_html(gettext("if <code>{}</code>"), wait.expression))
        if not lines:
            return None
        return format_html_join("\n", LINE_HTML, ((line,) for line in lines))

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
