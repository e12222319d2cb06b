"""Who may use the REST API: the classes named in API_PERMISSION/AUTHENTICATION_CLASSES."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from ..conf import app_settings


def _instances(paths: Sequence[str]) -> list[Any]:
    return [import_string(path)() for path in paths]


class ConfiguredAccessMixin:
    """Read permission and authentication classes from settings on every request.

    Settings are read per request, not at import, so `override_settings(INNGEST_DJANGO=...)`
    and a project's own choice apply without re-importing the views.
    """

    def get_permissions(self) -> list[BasePermission]:
        """Return the permissions named in API_PERMISSION_CLASSES."""
        return _instances(app_settings.API_PERMISSION_CLASSES)

    def get_authenticators(self) -> list[BaseAuthentication]:
        """Return the authenticators named in API_AUTHENTICATION_CLASSES."""
        return _instances(app_settings.API_AUTHENTICATION_CLASSES)
