"""DeferIntent and OutboxMessage: the ctx.defer calls of a run and the starts they owe."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..enums import DeferStatus
from ..names import MAX_NAME_LENGTH
from ..sealed_fields import SealedJSONField, SealedTextField
from .queue import _adapt, _stamp_oldest_unset
from .runs import FunctionRun


class DeferIntent(models.Model):
    """One `ctx.defer` call of one run: its target, payload and whether it will start."""

    run = models.ForeignKey(
        FunctionRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="defers"
    )
    defer_id = models.CharField(_("defer id"), max_length=MAX_NAME_LENGTH)
    function_id = models.CharField(
        _("deferred function"),
        max_length=MAX_NAME_LENGTH,
        help_text=_("Slug of the function to start."),
    )
    payload = SealedJSONField(
        _("payload"), null=True, blank=True, help_text=_("The validated data, as JSON.")
    )
    experiment = models.JSONField(
        _("experiment"),
        null=True,
        blank=True,
        help_text=_("The experiment variant the deferred run is attributed to."),
    )
    status = models.CharField(_("status"), max_length=16, choices=DeferStatus.choices)
    reason = SealedTextField(
        _("reason"), blank=True, default="", help_text=_("Why the call was rejected.")
    )
    size = models.PositiveIntegerField(_("payload size (bytes)"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("defer")
        verbose_name_plural = _("defers")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "defer_id"], name="inngest_defer_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.defer_id} -> {self.function_id}"

    @classmethod
    def schedule_pending(cls, run_id: str, *, now: datetime) -> int:
        """Mark the run's pending defers scheduled and write one outbox row each."""
        table = connection.ops.quote_name(cls._meta.db_table)
        # One statement when the run deferred nothing, which is the common finalize.
        sql = (
            f"UPDATE {table} SET status = %s, updated_at = %s "
            "WHERE run_id = %s AND status = %s RETURNING id"
        )
        params = [DeferStatus.SCHEDULED.value, _adapt(now), run_id, DeferStatus.PENDING.value]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids = sorted(row[0] for row in cursor.fetchall())
            if ids:
                # Raw: bulk_create's SQL building costs more than the insert itself.
                outbox = connection.ops.quote_name(OutboxMessage._meta.db_table)
                rows = ", ".join(["(%s, %s)"] * len(ids))
                stamp = _adapt(now)
                cursor.execute(
                    f"INSERT INTO {outbox} (intent_id, created_at) VALUES {rows}",
                    [value for pk in ids for value in (pk, stamp)],
                )
        return len(ids)


class OutboxMessage(models.Model):
    """A defer to start, written with its parent's final status; relayed into one run."""

    intent = models.OneToOneField(
        DeferIntent, verbose_name=_("defer"), on_delete=models.CASCADE, related_name="outbox"
    )
    created_at = models.DateTimeField(_("created at"))
    relayed_at = models.DateTimeField(
        _("relayed at"),
        null=True,
        blank=True,
        help_text=_("When the relay started the deferred run."),
    )

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(relayed_at__isnull=True),
                name="inngest_outbox_unrelayed",
            ),
        ]

    def __str__(self) -> str:
        return f"outbox {self.pk}"

    @classmethod
    def claim_unrelayed(cls, *, limit: int, now: datetime) -> list[int]:
        """Mark up to `limit` rows relayed and return their intent ids; call inside atomic()."""
        return _stamp_oldest_unset(cls, "relayed_at", "intent_id", limit=limit, now=now)
