"""The send-event page: a form that stores one event as `send()` would, for testing functions."""

from __future__ import annotations

import json
import logging
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..events import build_event_row, send
from ..exceptions import InvalidEventError
from ..names import MAX_NAME_LENGTH, RESERVED_PREFIX
from .display import event_id_link_html

logger = logging.getLogger(__name__)

# Sending an event from the admin needs Django's "add event" permission: the Event admin itself
# offers no add form (events are never edited), so the permission has no other use there.
SEND_PERMISSION = "add_event"


def json_object_from_text(text: str) -> dict[str, Any]:
    """Return the JSON object a form field holds (empty means {}), or raise a form error."""
    try:
        data = json.loads(text.strip() or "{}")
    except ValueError as exc:
        raise forms.ValidationError(
            gettext("This is not valid JSON: %(error)s") % {"error": exc}
        ) from None
    if not isinstance(data, dict):
        raise forms.ValidationError(
            gettext("Data must be a JSON object ({...}), not %(kind)s.")
            % {"kind": type(data).__name__}
        )
    return data


class SendEventForm(forms.Form):
    """An event's name, JSON data and optional producer id, checked as `send()` checks them."""

    name = forms.CharField(
        label=_("Name"),
        max_length=MAX_NAME_LENGTH,
        help_text=_('For example "shop/order.placed". Names under "inngest/" are reserved.'),
    )
    data = forms.CharField(
        label=_("Data"),
        initial="{}",
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "class": "vLargeTextField"}),
        help_text=_("A JSON object; empty means {}."),
    )
    id = forms.CharField(
        label=_("Producer id"),
        required=False,
        max_length=MAX_NAME_LENGTH,
        help_text=_("Optional. The same id again within 24 hours is stored but starts no runs."),
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name.startswith(RESERVED_PREFIX):
            raise forms.ValidationError(
                gettext('Names starting with "%(prefix)s" are sent only by the engine.')
                % {"prefix": RESERVED_PREFIX}
            )
        return name

    def clean_data(self) -> dict[str, Any]:
        return json_object_from_text(self.cleaned_data["data"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors:
            # Whatever else send() refuses (the size limit), refused here with its own words.
            try:
                build_event_row(self.event(), 0, system=False)
            except InvalidEventError as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned

    def event(self) -> dict[str, Any]:
        """Return the event as `send()` takes it."""
        return {
            "name": self.cleaned_data["name"],
            "data": self.cleaned_data["data"],
            "id": self.cleaned_data.get("id") or "",
        }


def send_event_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Show the form; on a valid POST store the event and go to its page with its id."""
    opts = model_admin.opts
    if not request.user.has_perm(f"{opts.app_label}.{SEND_PERMISSION}"):
        raise PermissionDenied
    form = SendEventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            (event_id,) = send(form.event())
        logger.info(
            "Admin sent event event_id=%s name=%s user=%s",
            event_id,
            form.cleaned_data["name"],
            request.user.get_username(),
            extra={"event_id": event_id, "action": "admin_send_event"},
        )
        model_admin.message_user(
            request,
            format_html(
                gettext("Event {} stored; a worker starts the runs it triggers."),
                event_id_link_html(event_id),
            ),
            messages.SUCCESS,
        )
        site = model_admin.admin_site.name
        change = f"{site}:{opts.app_label}_{opts.model_name}_change"
        return HttpResponseRedirect(reverse(change, args=[quote(event_id)]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Send an event"),
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "form": form,
        "changelist_url": reverse(
            f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
        ),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/inngest_django/event/send.html", context)
