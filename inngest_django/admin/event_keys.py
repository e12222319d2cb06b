"""Event API keys: issue one by name (its raw key shown once), list them, revoke them."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..event_keys import issue_key, revoke
from ..models import EventKey
from .display import status_badge_html
from .reports import report_counts

logger = logging.getLogger(__name__)


class EventKeyAddForm(forms.ModelForm):
    """Only the name: the key itself is made by `issue_key`, never typed."""

    class Meta:
        model = EventKey
        fields = ("name",)


@admin.register(EventKey)
class EventKeyAdmin(admin.ModelAdmin):
    """Add asks for a name only; rows are never edited, and revoking keeps them for the record."""

    list_display = ("name", "prefix_text", "state", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "=prefix")
    search_help_text = _("A key's name, or its first characters exactly.")
    ordering = ("-created_at",)
    actions = ("revoke_keys",)
    add_form = EventKeyAddForm
    # Never the digest: it is all an attacker needs to test guesses offline.
    fields = ("name", "prefix_text", "state", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name",) if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the page of a key is for reading; revoking is the one change

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a revoked key stays listed, with when it was last used

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Return True if the user may revoke keys (Django's "change event key" permission)."""
        return request.user.has_perm(f"{self.opts.app_label}.change_eventkey")

    def save_model(self, request: HttpRequest, obj: EventKey, form: Any, change: bool) -> None:
        row, raw_key = issue_key(form.cleaned_data["name"])
        # The admin logs and answers with `obj`; make it the issued row, raw key attached.
        obj.pk, obj.prefix, obj.digest, obj.created_at = (
            row.pk,
            row.prefix,
            row.digest,
            row.created_at,
        )
        obj._state = row._state
        obj.raw_key = raw_key  # type: ignore[attr-defined]
        logger.info(
            "Event key issued key_id=%s prefix=%s user=%s",
            row.pk,
            row.prefix,
            request.user.get_username(),
            extra={"key_id": row.pk, "action": "event_key_issued"},
        )

    def response_add(
        self, request: HttpRequest, obj: EventKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        """Show the raw key on this response only: it is in no message, session or log."""
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": _("Event key issued"),
            "subtitle": None,
            "opts": opts,
            "app_label": opts.app_label,
            "key": obj,
            "raw_key": obj.raw_key,  # type: ignore[attr-defined]
            "event_path": f"/e/{obj.raw_key}",  # type: ignore[attr-defined]
            "changelist_url": reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
            ),
        }
        request.current_app = self.admin_site.name
        response = TemplateResponse(request, "admin/inngest_django/eventkey/issued.html", context)
        # Nothing between here and the browser may keep a copy.
        response["Cache-Control"] = "no-store"
        return response

    @admin.display(description=_("Prefix"))
    def prefix_text(self, key: EventKey) -> str:
        return f"{key.prefix}…"

    @admin.display(description=_("State"), ordering="revoked_at")
    def state(self, key: EventKey) -> Any:
        if key.revoked_at is not None:
            return status_badge_html("FAILED", gettext("Revoked"))
        return status_badge_html("COMPLETED", gettext("Active"))

    @admin.action(description=_("Revoke selected keys"), permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = already = 0
        for key in queryset.only("name", "prefix"):
            if revoke(key.pk):
                revoked += 1
                self.log_change(request, key, gettext("Revoked."))
                logger.info(
                    "Event key revoked key_id=%s user=%s",
                    key.pk,
                    request.user.get_username(),
                    extra={"key_id": key.pk, "action": "event_key_revoked"},
                )
            else:
                already += 1
        report_counts(
            self,
            request,
            (
                (
                    revoked,
                    messages.SUCCESS,
                    ngettext(
                        "%(count)d key was revoked; requests using it are refused with 401.",
                        "%(count)d keys were revoked; requests using them are refused with 401.",
                        revoked,
                    ),
                ),
                (
                    already,
                    messages.WARNING,
                    ngettext(
                        "%(count)d key was already revoked.",
                        "%(count)d keys were already revoked.",
                        already,
                    ),
                ),
            ),
        )
