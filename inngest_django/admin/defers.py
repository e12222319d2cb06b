"""Defer admins: the run page's defer table, the defer list and the outbox list."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import DeferIntent, OutboxMessage
from .display import (
    defer_link_html,
    deferred_run_html,
    experiment_text,
    json_html,
    none_as_empty,
    run_id_link_html,
    status_badge_html,
)
from .filters import DeferTargetFilter, RelayedFilter
from .lookups import NulSafeLookupsMixin
from .payloads import (
    PayloadVisibilityMixin,
    hidden_payload_html,
    payloads_visible,
    unreadable_as_note,
)
from .readonly import ReadOnlyAdminMixin, RunPartInlineMixin
from .search import IndexedSearchMixin


class DeferColumnsMixin(PayloadVisibilityMixin):
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
    @unreadable_as_note
    def pretty_payload(self, intent: DeferIntent) -> SafeString | None:
        if intent.payload is None:
            return None
        return json_html(intent.payload) if payloads_visible(intent) else hidden_payload_html()

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


class DeferIntentInline(
    DeferColumnsMixin, RunPartInlineMixin, ReadOnlyAdminMixin, admin.TabularInline
):
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


@admin.register(DeferIntent)
class DeferIntentAdmin(
    IndexedSearchMixin,
    DeferColumnsMixin,
    ReadOnlyAdminMixin,
    NulSafeLookupsMixin,
    admin.ModelAdmin,
):
    list_display = (
        "defer_id",
        "run_link",
        "function_id",
        "status_badge",
        "deferred_run_link",
        "created_at",
    )
    list_filter = ("status", DeferTargetFilter)
    # search_match replaces Django's case-insensitive scans with exact lookups.
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

    def search_match(self, term: str) -> Q:
        return Q(defer_id=term) | Q(run_id=term.upper())

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


@admin.register(OutboxMessage)
class OutboxMessageAdmin(
    IndexedSearchMixin, ReadOnlyAdminMixin, NulSafeLookupsMixin, admin.ModelAdmin
):
    list_display = ("id", "defer_link", "run_link", "created_at", "relayed_at", "deferred_run_link")
    list_filter = (RelayedFilter,)
    # search_match replaces Django's case-insensitive scans with exact lookups.
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

    def search_match(self, term: str) -> Q:
        return Q(intent__defer_id=term) | Q(intent__run_id=term.upper())

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
