"""The event list and event page, with the runs each event started."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..models import Event, FunctionRun
from .display import json_html, run_link_html, status_badge_html
from .filters import DispatchedFilter, EventNamePrefixFilter
from .lookups import NulSafeLookupsMixin
from .payloads import (
    PayloadVisibilityMixin,
    hidden_payload_html,
    payloads_visible,
    unreadable_as_note,
)
from .readonly import ReadOnlyAdminMixin
from .search import IndexedSearchMixin
from .send_event import SEND_PERMISSION, send_event_view


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
class EventAdmin(
    PayloadVisibilityMixin,
    IndexedSearchMixin,
    ReadOnlyAdminMixin,
    NulSafeLookupsMixin,
    admin.ModelAdmin,
):
    list_display = ("name", "id", "external_id", "received_at", "dispatched_at", "run_count")
    list_filter = (EventNamePrefixFilter, DispatchedFilter)
    # search_match replaces Django's case-insensitive scans with indexed lookups.
    search_fields = ("id", "name", "external_id")
    search_help_text = _("An event id, a producer id, or the start of an event name.")
    show_full_result_count = False
    fields = ("id", "name", "external_id", "ts", "received_at", "dispatched_at", "pretty_data")
    readonly_fields = fields
    inlines = (EventRunInline,)
    change_list_template = "admin/inngest_django/event/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        send = path(
            "send/",
            self.admin_site.admin_view(self.send_event_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_send",
        )
        # First: the catch-all "<path:object_id>/" redirect would otherwise swallow it.
        return [send, *super().get_urls()]

    def send_event_view(self, request: HttpRequest) -> HttpResponse:
        """Show the send-event form, and store the event it posts."""
        return send_event_view(self, request)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        if request.user.has_perm(f"{self.opts.app_label}.{SEND_PERMISSION}"):
            send_url = reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_send"
            )
            extra_context = {**(extra_context or {}), "send_event_url": send_url}
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(run_count=Count("runs"))

    def search_match(self, term: str) -> Q:
        return Q(pk=term.upper()) | Q(external_id=term) | Q(name__startswith=term)

    @admin.display(description=_("Runs"), ordering="run_count")
    def run_count(self, event: Event) -> int:
        return event.run_count  # type: ignore[attr-defined]

    @admin.display(description=_("Data"))
    @unreadable_as_note
    def pretty_data(self, event: Event) -> SafeString:
        return json_html(event.data) if payloads_visible(event) else hidden_payload_html()
