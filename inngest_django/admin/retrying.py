"""The run list's "Retrying" state: a queued run that failed before, shown apart from new ones."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..enums import RunStatus
from ..models import FunctionRun

# Display only: the stored status stays QUEUED, so the worker and the API see no new state.
RETRYING = "RETRYING"
RETRYING_LABEL = _("Retrying")
# A failed attempt counts up `attempt`; an operator's retry of a failed run resets it to 0 but
# keeps the run's error until the run finishes again.
RETRYING_Q = Q(status=RunStatus.QUEUED) & (Q(attempt__gt=0) | Q(error__isnull=False))


def is_retrying(run: FunctionRun) -> bool:
    """Return True if the run waits in the queue to try again after a failure."""
    return run.status == RunStatus.QUEUED and (run.attempt > 0 or run.error is not None)


def shown_status(run: FunctionRun) -> tuple[str, Any]:
    """Return the status value and label the admin shows: RETRYING, or the stored one."""
    if is_retrying(run):
        return RETRYING, RETRYING_LABEL
    return run.status, run.get_status_display()


class RunStatusFilter(admin.ChoicesFieldListFilter):
    """The stored statuses, with "Retrying" after "Queued"; "Queued" then means never failed."""

    def choices(self, changelist: Any) -> Any:
        queued = f"{self.lookup_kwarg}={RunStatus.QUEUED}"
        for choice in super().choices(changelist):
            yield choice
            # Facet counts, when shown, are of stored values: "Retrying" gets none.
            if queued in choice["query_string"]:
                yield {
                    "selected": self.lookup_val is not None and RETRYING in self.lookup_val,
                    "query_string": changelist.get_query_string(
                        {self.lookup_kwarg: RETRYING}, [self.lookup_kwarg_isnull]
                    ),
                    "display": RETRYING_LABEL,
                }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        values = self.lookup_val or []
        if RETRYING in values:
            return queryset.filter(RETRYING_Q)
        if RunStatus.QUEUED in values:
            return super().queryset(request, queryset).exclude(RETRYING_Q)
        return super().queryset(request, queryset)
