"""Event API keys: issue one (raw key shown once, names optionally limited), list, revoke."""

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

from ..event_keys import clean_prefixes, issue_key, revoke
from ..models import EventKey
from .display import status_badge_html
from .lookups import NulSafeLookupsMixin
from .reports import report_counts

logger = logging.getLogger(__name__)


class EventPrefixesField(forms.CharField):
    """Event-name prefixes typed one per line (or comma-separated), kept as a list."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Event name prefixes"))
        kwargs.setdefault(
            "help_text",
            _(
                'One per line, for example "billing/". The key may send only events whose '
                "names start with one of them; empty allows any name."
            ),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        try:
            return clean_prefixes(text.replace(",", "\n").splitlines())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class EventKeyAddForm(forms.ModelForm):
    """The name and event-name prefixes: the key itself is made by `issue_key`, never typed."""

    event_prefixes = EventPrefixesField()

    class Meta:
        model = EventKey
        fields = ("name", "event_prefixes")


@admin.register(EventKey)
class EventKeyAdmin(NulSafeLookupsMixin, admin.ModelAdmin):
    """Add asks for a name and prefixes; rows are never edited; revoking keeps them on record."""

    list_display = (
        "name",
        "prefix_text",
        "event_names",
        "state",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "=prefix")
    search_help_text = _("A key's name, or its first characters exactly.")
    ordering = ("-created_at",)
    actions = ("revoke_keys",)
    add_form = EventKeyAddForm
    # The columns of the list, and never the digest: it is all an attacker needs to test
    # guesses offline.
    fields = list_display
    readonly_fields = fields

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name", "event_prefixes") if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The page of a key is for reading; revoking is the one change. Other prefixes mean a
        # new key: whoever holds the old one keeps what it was issued for until it is revoked.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a revoked key stays listed, with when it was last used

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Return True if the user may revoke keys (Django's "change event key" permission)."""
        return request.user.has_perm(f"{self.opts.app_label}.change_eventkey")

    def save_model(self, request: HttpRequest, obj: EventKey, form: Any, change: bool) -> None:
        row, raw_key = issue_key(
            form.cleaned_data["name"], event_prefixes=form.cleaned_data["event_prefixes"]
        )
        # The admin logs and answers with `obj`; make it the issued row, raw key attached.
        obj.pk, obj.prefix, obj.digest, obj.created_at, obj.event_prefixes = (
            row.pk,
            row.prefix,
            row.digest,
            row.created_at,
            row.event_prefixes,
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

    @admin.display(description=_("Event names"))
    def event_names(self, key: EventKey) -> str:
        if not key.event_prefixes:
            return gettext("any")
        return ", ".join(f"{prefix}…" for prefix in key.event_prefixes)

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
