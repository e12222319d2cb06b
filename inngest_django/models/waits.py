"""Wait and WaitKey: what runs wait for, and where an incoming event looks for them."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..enums import WaitKind, WaitOutcome
from ..names import MAX_NAME_LENGTH
from ..sealed_fields import SealedTextField
from .events import Event
from .runs import FunctionRun


class WaitQuerySet(models.QuerySet):
    def pending(self) -> WaitQuerySet:
        return self.filter(resolved_at__isnull=True)


class Wait(models.Model):
    """What a run waits for: an event (wait_for_event), an invoked run, or a cancel rule's event."""

    run = models.ForeignKey(
        FunctionRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="waits"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=WaitKind.choices)
    step_key = models.CharField(_("step id"), max_length=MAX_NAME_LENGTH, blank=True, default="")
    event_name = models.CharField(
        _("event name"),
        max_length=MAX_NAME_LENGTH,
        blank=True,
        default="",
        help_text=_("The awaited event."),
    )
    match_key = models.CharField(
        _("match field"),
        max_length=MAX_NAME_LENGTH,
        blank=True,
        default="",
        help_text=_("Path such as data.user_id that must equal the run's trigger event's."),
    )
    match_value = models.CharField(
        _("match value"),
        max_length=MAX_NAME_LENGTH,
        blank=True,
        default="",
        help_text=_("As JSON."),
    )
    expression = SealedTextField(
        _("if expression"), blank=True, default="", help_text=_("CEL over `event` and `async`.")
    )
    after_event_id = models.CharField(
        _("after event id"),
        max_length=26,
        blank=True,
        default="",
        help_text=_("Only events with a later id count: those received after the wait began."),
    )
    child_run = models.ForeignKey(
        FunctionRun,
        verbose_name=_("invoked run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoked_by",
    )
    expires_at = models.DateTimeField(_("times out at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=WaitOutcome.choices, blank=True, default=""
    )
    event = models.ForeignKey(
        Event,
        verbose_name=_("matched event"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = WaitQuerySet.as_manager()

    class Meta:
        verbose_name = _("wait")
        verbose_name_plural = _("waits")
        ordering = ["id"]
        indexes = [
            # One incoming event finds its waits by name and match value, never by a scan.
            models.Index(
                fields=["event_name", "match_key", "match_value"],
                condition=Q(resolved_at__isnull=True),
                name="inngest_wait_pending_match",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.step_key or self.event_name}"

    @classmethod
    def resolve(
        cls,
        pk: int,
        *,
        now: datetime,
        outcome: WaitOutcome,
        event_id: str | None = None,
    ) -> bool:
        """Resolve a pending wait; False if something else resolved it first."""
        return bool(
            cls.objects.filter(pk=pk, resolved_at__isnull=True).update(
                resolved_at=now, outcome=outcome, event_id=event_id
            )
        )


class WaitKey(models.Model):
    """A match field ("" for none) some wait used for an event name: where an event looks."""

    event_name = models.CharField(_("event name"), max_length=MAX_NAME_LENGTH)
    match_key = models.CharField(_("match field"), max_length=MAX_NAME_LENGTH)

    class Meta:
        verbose_name = _("wait key")
        verbose_name_plural = _("wait keys")
        constraints = [
            models.UniqueConstraint(
                fields=["event_name", "match_key"], name="inngest_wait_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_name}: {self.match_key}"
