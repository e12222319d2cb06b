"""The workers page (WorkerHeartbeat's list) and, under it, the metrics page's URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..models import WorkerHeartbeat, WorkerState
from .lookups import NulSafeLookupsMixin
from .metrics import metrics_view

STATE_COLOURS = {
    WorkerState.RUNNING: "#198754",
    WorkerState.STALE: "#dc3545",
    WorkerState.STOPPED: "#adb5bd",
}


def millis_text(value: datetime) -> str:
    """Return `value` in the current time zone to the millisecond: 2026-12-06 20:31:07.123."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def ago_text(value: datetime, now: datetime) -> str:
    """Return how long ago `value` was: "0.4 s ago", "12 s ago", "3 min ago", "2 h ago"."""
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return gettext("in %(seconds).1f s") % {"seconds": -seconds}
    if seconds < 10:
        return gettext("%(seconds).1f s ago") % {"seconds": seconds}
    if seconds < 120:
        return gettext("%(seconds)d s ago") % {"seconds": seconds}
    if seconds < 7200:
        return gettext("%(minutes)d min ago") % {"minutes": seconds // 60}
    return gettext("%(hours)d h ago") % {"hours": seconds // 3600}


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(NulSafeLookupsMixin, admin.ModelAdmin):
    """Each worker with its last heartbeat; stale ones (beats missed) flagged in red."""

    list_display = (
        "worker_id",
        "state_badge",
        "host",
        "pid",
        "threads",
        "runs_in_hand",
        "heartbeat",
        "started",
    )
    list_filter = ("host", "executor")
    search_fields = ("=worker_id", "host")
    ordering = ("stopped_at", "-last_heartbeat")
    readonly_fields = [field.name for field in WorkerHeartbeat._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Delete stays: an operator clears the row of a worker that is gone for good.
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        beats = app_settings.WORKER_STALE_AFTER_BEATS
        extra = {
            "subtitle": gettext(
                "A worker is stale after %(beats)d heartbeat intervals with no heartbeat."
            )
            % {"beats": beats},
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def get_urls(self) -> list[URLPattern]:
        metrics = path(
            "metrics/",
            self.admin_site.admin_view(self.metrics_view),
            name=f"{self.opts.app_label}_metrics",
        )
        return [metrics, *super().get_urls()]

    def metrics_view(self, request: HttpRequest) -> HttpResponse:
        return metrics_view(self, request)

    def _state(self, obj: WorkerHeartbeat) -> WorkerState:
        return obj.state(timezone.now(), app_settings.WORKER_STALE_AFTER_BEATS)

    @admin.display(description=_("state"))
    def state_badge(self, obj: WorkerHeartbeat) -> SafeString:
        state = self._state(obj)
        return format_html(
            '<span class="worker-state" data-state="{}" style="background: {}; color: #fff; '
            'padding: 1px 6px; border-radius: 8px; font-size: 11px;">{}</span>',
            state.value,
            STATE_COLOURS[state],
            state.label,
        )

    @admin.display(description=_("last heartbeat"), ordering="last_heartbeat")
    def heartbeat(self, obj: WorkerHeartbeat) -> SafeString:
        now = timezone.now()
        return format_html(
            '<span class="heartbeat" title="{}">{}</span><br><small>{}</small>',
            obj.last_heartbeat.isoformat(),
            millis_text(obj.last_heartbeat),
            ago_text(obj.last_heartbeat, now),
        )

    @admin.display(description=_("started"), ordering="started_at")
    def started(self, obj: WorkerHeartbeat) -> str:
        return millis_text(obj.started_at)
