"""Who may use the REST API: the configured classes, then Django's permission for each action."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..conf import app_settings

APP_LABEL = "inngest_django"
# What each codename lets a user do, for the 403's detail.
_DOING = {
    "view_functionrun": "view function runs",
    "view_event": "view events",
    "cancel_functionrun": "cancel function runs",
    "rerun_functionrun": "rerun function runs",
    "retry_functionrun": "retry failed function runs",
    "pause_function": "pause and resume functions",
    "add_event": "invoke functions",
}


def _instances(paths: Sequence[str]) -> list[Any]:
    return [import_string(path)() for path in paths]


class ActionPermission(BasePermission):
    """Require the Django permission the view names for its action, such as view_functionrun.

    A view lists them in `action_permissions` (action name to codename); an action it does not
    list (OPTIONS, or a method the route refuses) needs the permission of "list".
    """

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        required: Mapping[str, str] = getattr(view, "action_permissions", {})
        if not required:
            return True
        codename = required.get(getattr(view, "action", None) or "", required["list"])
        if request.user.has_perm(f"{APP_LABEL}.{codename}"):
            return True
        doing = _DOING.get(codename, "perform this action")
        self.message = (
            f"You do not have permission to {doing}: it needs the "
            f"'{APP_LABEL}.{codename}' permission."
        )
        return False


class ConfiguredAccessMixin:
    """Read permission and authentication classes from settings on every request.

    Settings are read per request, not at import, so `override_settings(INNGEST_DJANGO=...)`
    and a project's own choice apply without re-importing the views. API_PERMISSION_CLASSES is
    the outer gate (staff by default); ActionPermission then asks for the model permission of
    the action, whatever the gate.
    """

    def get_permissions(self) -> list[BasePermission]:
        """Return the permissions named in API_PERMISSION_CLASSES, then ActionPermission."""
        return [*_instances(app_settings.API_PERMISSION_CLASSES), ActionPermission()]

    def get_authenticators(self) -> list[BaseAuthentication]:
        """Return the authenticators named in API_AUTHENTICATION_CLASSES."""
        return _instances(app_settings.API_AUTHENTICATION_CLASSES)
