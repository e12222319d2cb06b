"""Read-only admins and inlines: engine rows shown, never changed through forms."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Allow viewing only: runs change through the engine, never through forms."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RunPartInlineMixin:
    """Show a run's steps, waits and defers to whoever may view the run."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # They are parts of the run's page, as they are of the REST API's run detail: needing
        # view_steprun, view_wait and view_deferintent as well would only confuse groups.
        return request.user.has_perm("inngest_django.view_functionrun")
