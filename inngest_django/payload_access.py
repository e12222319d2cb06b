"""Who may see stored payloads: one rule for the admin and the REST API."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from .conf import app_settings
from .exceptions import DecryptionError

# FunctionRun's Meta declares it: event data, step and run outputs and errors, defer payloads.
PAYLOAD_PERMISSION = "inngest_django.view_payloads"
HIDDEN_TEXT = _("hidden: needs the 'Can view payloads' permission")


# The API's stand-in for a payload no configured key opens; `$` as in the stored `$sealed`.
UNREADABLE_KEY = "$unreadable"


def unreadable_note(obj: Any, name: str) -> str | None:
    """Return why `obj.name` cannot be decrypted, or None if it reads (or is not sealed)."""
    try:
        getattr(obj, name)
    except DecryptionError as exc:
        return str(exc)
    return None


def read_payload(obj: Any, name: str) -> Any:
    """Return `obj.name`, or {"$unreadable": reason} when no configured key decrypts it."""
    try:
        return getattr(obj, name)
    except DecryptionError as exc:
        return {UNREADABLE_KEY: str(exc)}


def payloads_restricted() -> bool:
    """Return True if payloads are shown only to holders of the view_payloads permission."""
    # Encryption at rest is the switch: without it, anyone who may view a row sees all of it.
    return bool(app_settings.ENCRYPTION_KEYS)


def can_view_payloads(user: Any) -> bool:
    """Return True if `user` may see event data, inputs, outputs, errors and defer payloads.

    With ENCRYPTION_KEYS empty, anyone allowed to view a row sees its payloads. With encryption
    on, only users with the `inngest_django.view_payloads` permission do (superusers included).
    """
    if not payloads_restricted():
        return True
    return user is not None and user.has_perm(PAYLOAD_PERMISSION)
