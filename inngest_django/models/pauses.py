"""FunctionPause: the functions an operator paused, and the look-ups triggers and claims use."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..names import MAX_NAME_LENGTH

# The admin's pause button and the REST API's pause endpoint ask for this permission.
PAUSE_PERMISSION = "pause_function"


class FunctionPause(models.Model):
    """One paused function: triggers start no runs of it and workers claim none of its runs."""

    function_id = models.CharField(
        _("function"),
        max_length=MAX_NAME_LENGTH,
        unique=True,
        help_text=_("The slug of the paused function."),
    )
    paused_at = models.DateTimeField(_("paused at"))
    paused_by = models.CharField(
        _("paused by"),
        max_length=150,
        blank=True,
        help_text=_("Who paused it: a username, or how (command, API) when no user is known."),
    )

    class Meta:
        verbose_name = _("function pause")
        verbose_name_plural = _("function pauses")
        default_permissions = ("view",)
        permissions = [(PAUSE_PERMISSION, _("Can pause and resume functions"))]

    def __str__(self) -> str:
        return f"{self.function_id} (paused)"


def paused_function_ids() -> set[str]:
    """Return the ids of every paused function (one query on a table of a few rows)."""
    return set(FunctionPause.objects.values_list("function_id", flat=True))


def is_paused(function_ids: str | Iterable[str]) -> bool:
    """Return True if the function, or any of the functions, is paused."""
    ids = [function_ids] if isinstance(function_ids, str) else list(function_ids)
    return bool(ids) and FunctionPause.objects.filter(function_id__in=ids).exists()


def paused_clause(table: str, alias: str = "") -> str:
    """Return SQL true for runs a claim may take: not paused, or asked to stop.

    A cancelled run of a paused function is still claimed: its pass ends it before any of
    its code runs, so an operator can clear a paused function's backlog.
    """
    prefix = f"{alias or table}."
    pauses = FunctionPause._meta.db_table
    # NOT EXISTS, not NOT IN: the same plan on both databases and no NULL pitfall.
    return (
        f"({prefix}cancel_requested_at IS NOT NULL OR NOT EXISTS "
        f"(SELECT 1 FROM {pauses} p WHERE p.function_id = {prefix}function_id))"
    )


def unpaused() -> Q:
    """Return the ORM form of `paused_clause`: runs not paused, or asked to stop."""
    paused = FunctionPause.objects.values("function_id")
    return ~Q(function_id__in=paused, cancel_requested_at__isnull=True)
