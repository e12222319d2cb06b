"""Events, the events of a batched run, idempotency keys and Event API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..names import MAX_NAME_LENGTH
from ..sealed_fields import SealedJSONField
from .queue import any_unset, stamp_oldest_unset_sql


class EventQuerySet(models.QuerySet):
    def undispatched(self) -> EventQuerySet:
        return self.filter(dispatched_at__isnull=True)

    def any_undispatched(self) -> bool:
        """Return True if some event waits to be dispatched."""
        return any_unset(self.model, "dispatched_at")

    def claim_undispatched(self, *, limit: int, now: datetime) -> list[Event]:
        """Mark up to `limit` new events dispatched and return them by id; call inside atomic()."""
        # The rows come back from the UPDATE itself: no second read of what it just marked.
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in self.model._meta.concrete_fields)
        sql, params = stamp_oldest_unset_sql(
            self.model, "dispatched_at", columns, limit=limit, now=now
        )
        return sorted(self.raw(sql, params), key=lambda event: event.pk)


class Event(models.Model):
    """An event received from `send`, the Event API, cron or the engine itself."""

    id = models.CharField(_("id"), max_length=26, primary_key=True, help_text=_("Internal ULID."))
    name = models.CharField(_("name"), max_length=MAX_NAME_LENGTH, db_index=True)
    data = SealedJSONField(_("data"), default=dict, blank=True)
    external_id = models.CharField(
        _("producer id"),
        max_length=MAX_NAME_LENGTH,
        blank=True,
        db_index=True,
        help_text=_("The sender's `id`; a repeat within 24 hours starts no second run."),
    )
    ts = models.BigIntegerField(_("timestamp (ms)"), help_text=_("Epoch milliseconds."))
    seed_id = models.CharField(
        _("seed id"),
        max_length=26,
        blank=True,
        default="",
        help_text=_(
            "The id an Event API client's id seed gives this event; a retry with the same seed "
            "finds this row instead of storing a copy."
        ),
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(
        _("dispatched at"),
        null=True,
        blank=True,
        help_text=_("When the event was matched against function triggers."),
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(dispatched_at__isnull=True),
                name="inngest_event_undispatched",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["seed_id"],
                condition=~Q(seed_id=""),
                name="inngest_event_seed_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def to_json(self) -> dict[str, Any]:
        """Return the event as handlers and expressions see it."""
        return {
            "name": self.name,
            "data": self.data,
            "id": self.external_id or self.id,
            "ts": self.ts,
        }


class RunEvent(models.Model):
    """One event of a batched run, in the order the batch received them."""

    # Named, not imported: the runs module imports this one.
    run = models.ForeignKey(
        "inngest_django.FunctionRun",
        verbose_name=_("run"),
        on_delete=models.CASCADE,
        related_name="batch_events",
    )
    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="+"
    )
    position = models.PositiveIntegerField(_("position"))

    class Meta:
        verbose_name = _("batched event")
        verbose_name_plural = _("batched events")
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="inngest_run_event_position"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}[{self.position}]"


class IdempotencyKey(models.Model):
    """A key that lets one run per function through until it expires (event ids, for now)."""

    function_id = models.CharField(_("function"), max_length=MAX_NAME_LENGTH)
    key = models.CharField(_("key"), max_length=MAX_NAME_LENGTH)
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["function_id", "key"], name="inngest_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.function_id}: {self.key}"

    @classmethod
    def acquire(cls, function_id: str, key: str, *, now: datetime, expires_at: datetime) -> bool:
        """Take the key until `expires_at`; False if someone holds it unexpired."""
        rows = cls.objects.filter(function_id=function_id, key=key)
        # Twice at most: retention may delete an expired key between the insert and the update.
        for _attempt in range(2):
            try:
                with transaction.atomic():
                    cls.objects.create(function_id=function_id, key=key, expires_at=expires_at)
                    return True
            except IntegrityError:
                if rows.filter(expires_at__lte=now).update(expires_at=expires_at):
                    return True
                if rows.exists():
                    return False
        return False


class EventKey(models.Model):
    """A credential for the Event API: only its SHA-256 digest is stored."""

    name = models.CharField(
        _("name"),
        max_length=MAX_NAME_LENGTH,
        help_text=_("Who uses the key, for example 'billing service'."),
    )
    prefix = models.CharField(
        _("prefix"),
        max_length=8,
        db_index=True,
        help_text=_("The key's first characters, to tell keys apart without storing them."),
    )
    digest = models.CharField(_("SHA-256 digest"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(
        _("revoked at"),
        null=True,
        blank=True,
        help_text=_("A revoked key is refused with 401; the row stays for the record."),
    )
    event_prefixes = models.JSONField(
        _("event name prefixes"),
        default=list,
        blank=True,
        help_text=_(
            "Event names this key may send must start with one of these; empty allows any name."
        ),
    )

    class Meta:
        verbose_name = _("event key")
        verbose_name_plural = _("event keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
