"""Concurrency keys on the run page and filters, and the flow-control state admin."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..enums import RunStatus
from ..models import FlowState, FunctionRun
from ..payload_access import payloads_restricted
from .display import LINE_HTML, none_as_empty
from .lookups import NulSafeLookupsMixin
from .readonly import ReadOnlyAdminMixin
from .times import duration_text

_NOT_EXECUTING = (RunStatus.QUEUED, RunStatus.SLEEPING, RunStatus.WAITING)
# FlowState kinds whose time paces starts; the other kinds' rows are only locked.
_PACED_KINDS = ("throttle", "rate_limit")


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
    # A run that is due but not executing is claimed only once each of its keys has room; a
    # parked run is one a claim already found blocked (its due time then waits for a slot).
    due = run.status in _NOT_EXECUTING and (run.available_at <= now or run.parked_from is not None)
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
    return format_html_join("\n", LINE_HTML, ((line,) for line in (*full, *lines)))


@admin.register(FlowState)
class FlowStateAdmin(ReadOnlyAdminMixin, NulSafeLookupsMixin, admin.ModelAdmin):
    """Pacing rows of throttles and rate limits, and the rows other options only lock."""

    list_display = ("function_id", "kind", "key", "tat", "ahead")
    list_filter = ("kind",)
    search_fields = ("=function_id", "=key")
    search_help_text = _("A function slug or a key, exactly.")
    ordering = ("function_id", "kind", "key")
    fields = ("function_id", "kind", "key", "tat", "ahead")
    readonly_fields = fields

    def get_search_fields(self, request: HttpRequest) -> Sequence[str]:
        # A key is computed from event data: with encryption on, no search may probe it.
        return ("=function_id",) if payloads_restricted() else self.search_fields

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
