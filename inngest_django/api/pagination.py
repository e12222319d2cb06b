"""Cursor pages, newest first: stable while new runs and events arrive, and no COUNT(*)."""

from __future__ import annotations

from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from .filters import InvalidFilterError


class NewestFirstPagination(CursorPagination):
    """Pages of `page_size` rows (default 50, at most 500) ordered by a datetime, newest first."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering: Any = ("-created_at", "-id")
    invalid_cursor_message = "The cursor is invalid: use the `next` or `previous` link as given."

    def decode_cursor(self, request: Request) -> Cursor | None:
        """Return the cursor in the request; a damaged one is a 400, never a 404 or a 500."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise InvalidFilterError(self.invalid_cursor_message) from None
        # The position is compared with a DateTimeField: an unparseable one would fail in SQL.
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except ValueError:
                valid = False
            if not valid:
                raise InvalidFilterError(self.invalid_cursor_message)
        return cursor


class RunPagination(NewestFirstPagination):
    """Runs, newest created first."""

    ordering = ("-created_at", "-id")


class EventPagination(NewestFirstPagination):
    """Events, newest received first."""

    ordering = ("-received_at", "-id")
