"""Lookups from admin URLs: an id or a filter value holding a NUL finds nothing, never a 500."""

from __future__ import annotations

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.db.models import Model
from django.http import HttpRequest

from ..names import matches_nothing


class NulSafeLookupsMixin:
    """Answer an id or a list parameter holding a NUL as Django answers any it cannot look up."""

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Model | None:
        # None gives Django's "doesn't exist" redirect, as for an id of the wrong shape; the
        # query would be a DataError on PostgreSQL, which refuses NUL in text.
        if matches_nothing(object_id):
            return None
        return super().get_object(request, object_id, from_field)  # type: ignore[misc]

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        # Django's own answer to a lookup it cannot run: a redirect to the bare list with ?e=1.
        # The search box is left to Django's form, which refuses a NUL with a message.
        values = [
            value
            for name, named_values in request.GET.lists()
            if name != SEARCH_VAR
            for value in named_values
        ]
        values.extend(request.POST.getlist(ACTION_CHECKBOX_NAME))
        if any(matches_nothing(value) for value in values):
            raise IncorrectLookupParameters("A lookup value holds a NUL character.")
        return super().get_changelist_instance(request)  # type: ignore[misc]
