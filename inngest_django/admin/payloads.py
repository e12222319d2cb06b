"""Payload columns in the admin: shown, or replaced by a note, per payload_access's rule."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db.models import BooleanField, QuerySet, Value
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..exceptions import DecryptionError
from ..payload_access import HIDDEN_TEXT, can_view_payloads, payloads_restricted

# The attribute get_queryset sets on each row, for display methods that get no request.
VISIBLE_ATTRIBUTE = "payloads_visible"


class PayloadVisibilityMixin:
    """Mark each row of the admin's queryset with whether this request's user sees payloads."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        visible = Value(can_view_payloads(request.user), output_field=BooleanField())
        return super().get_queryset(request).annotate(**{VISIBLE_ATTRIBUTE: visible})  # type: ignore[misc]


def payloads_visible(obj: Any) -> bool:
    """Return whether the admin may show this row's payloads to the user it was loaded for."""
    visible = getattr(obj, VISIBLE_ATTRIBUTE, None)
    if visible is None:
        # A row not loaded through the admin's queryset: shown only while nothing is restricted.
        return not payloads_restricted()
    return bool(visible)


def hidden_payload_html() -> SafeString:
    """Return the note shown in place of a payload the user may not see."""
    return format_html('<span class="inngest-payload-hidden"><em>{}</em></span>', HIDDEN_TEXT)


def unreadable_html(exc: DecryptionError) -> SafeString:
    """Return the note shown in place of a payload no configured key decrypts."""
    return format_html('<span class="inngest-payload-unreadable"><em>{}</em></span>', str(exc))


def unreadable_as_note(method: Callable[..., Any]) -> Callable[..., Any]:
    """Make a display method show a note, not a server error, for a payload it cannot decrypt."""

    @functools.wraps(method)
    def display(self: Any, obj: Any) -> Any:
        try:
            return method(self, obj)
        except DecryptionError as exc:
            return unreadable_html(exc)

    return display
