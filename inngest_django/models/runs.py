"""FunctionRun: one run of a function, with the state changes of its lease."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..enums import CLAIMABLE_STATUSES, FINISHED_STATUSES, RunStatus, StepStatus
from ..names import MAX_NAME_LENGTH
from ..sealed_fields import SealedJSONField
from . import rows
from .events import Event
from .queue import FunctionRunQuerySet

if TYPE_CHECKING:
    from .steps import HeldMemo


def _where_set(field: str, name: str) -> models.Index:
    """Return an index of `field` over the rows where it is set, so a NULL adds no entry."""
    return models.Index(fields=[field], condition=Q(**{f"{field}__isnull": False}), name=name)


_RELEASED = {"locked_by": "", "lease_token": "", "locked_until": None}


def _due_unless_cancelled(at: datetime) -> models.Case:
    """Return `at`, or the time of a cancel or wake request that came while the run executed."""
    # Evaluated in the UPDATE itself, on the row as it is when the update gets its lock, so a
    # request that lands while the run executes is seen when the run releases its lease.
    return models.Case(
        models.When(cancel_requested_at__isnull=False, then=models.F("cancel_requested_at")),
        models.When(wake_requested_at__isnull=False, then=models.F("wake_requested_at")),
        default=models.Value(at),
    )


class FunctionRun(models.Model):
    """One run of a function: its status, trigger event, output or error, and lease."""

    id = models.CharField(_("id"), max_length=26, primary_key=True)
    function_id = models.CharField(
        _("function"), max_length=MAX_NAME_LENGTH, help_text=_("Function slug.")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    event = models.ForeignKey(
        Event,
        verbose_name=_("trigger event"),
        on_delete=models.CASCADE,
        related_name="runs",
    )
    output = SealedJSONField(_("output"), null=True, blank=True)
    error = SealedJSONField(
        _("error"),
        null=True,
        blank=True,
        help_text=_("Name, message and stack of the failure (or of the last failed attempt)."),
    )
    parent_run = models.ForeignKey(
        "self",
        verbose_name=_("parent run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="child_runs",
        db_index=False,
    )
    rerun_of = models.ForeignKey(
        "self",
        verbose_name=_("rerun of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="reruns",
        help_text=_("The run this one repeats from the start, with the same event."),
    )
    defer_intent = models.OneToOneField(
        "DeferIntent",
        verbose_name=_("started by defer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deferred_run",
        help_text=_("The ctx.defer call this deferred run was started by; one run per call."),
    )
    cancel_requested_at = models.DateTimeField(
        _("cancel requested at"),
        null=True,
        blank=True,
        help_text=_("Set by cancel_run; the run stops at its next step boundary."),
    )
    wake_requested_at = models.DateTimeField(
        _("wake requested at"),
        null=True,
        blank=True,
        help_text=_("Set when what the run waits for arrived; cleared when a worker claims it."),
    )
    cancel_reason = models.CharField(
        _("cancel reason"),
        max_length=MAX_NAME_LENGTH,
        blank=True,
        default="",
        help_text=_("Who asked."),
    )
    flow_note = models.CharField(
        _("flow control"),
        max_length=MAX_NAME_LENGTH,
        blank=True,
        default="",
        help_text=_("Why flow control skipped, delayed or reordered the run."),
    )
    concurrency_key = models.CharField(
        _("concurrency key"), max_length=MAX_NAME_LENGTH, blank=True, default=""
    )
    concurrency_limit = models.PositiveIntegerField(_("concurrency limit"), default=0)
    concurrency_key_2 = models.CharField(
        _("second concurrency key"), max_length=MAX_NAME_LENGTH, blank=True, default=""
    )
    concurrency_limit_2 = models.PositiveIntegerField(_("second concurrency limit"), default=0)
    parked_from = models.DateTimeField(
        _("parked from"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Set while the run waits for a slot of a full concurrency key: the due time it "
            "had, restored when a slot frees."
        ),
    )
    singleton_key = models.CharField(
        _("singleton key"), max_length=MAX_NAME_LENGTH, blank=True, default=""
    )
    debounce_key = models.CharField(
        _("debounce key"), max_length=MAX_NAME_LENGTH, blank=True, default=""
    )
    batch_key = models.CharField(
        _("open batch key"),
        max_length=MAX_NAME_LENGTH,
        blank=True,
        default="",
        help_text=_("Set while the run's batch still takes events."),
    )
    batch_size = models.PositiveIntegerField(
        _("batch size"), default=0, help_text=_("Events in the run's batch; 0 for no batch.")
    )
    debounce_deadline = models.DateTimeField(
        _("debounce deadline"),
        null=True,
        blank=True,
        help_text=_("Debounce timeout: later events no longer push the start past this."),
    )
    attempt = models.PositiveIntegerField(
        _("attempt"), default=0, help_text=_("Failed attempts of the current step (0-based).")
    )
    manual_retries = models.PositiveIntegerField(
        _("manual retries"),
        default=0,
        help_text=_("How often someone retried this run after it failed."),
    )
    available_at = models.DateTimeField(
        _("available at"),
        help_text=_("When the run may be claimed next; for a running run, its lease expiry."),
    )
    locked_by = models.CharField(_("locked by"), max_length=MAX_NAME_LENGTH, blank=True, default="")
    lease_token = models.CharField(_("lease token"), max_length=32, blank=True, default="")
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = FunctionRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("function run")
        verbose_name_plural = _("function runs")
        ordering = ["-created_at"]
        permissions = [
            ("cancel_functionrun", "Can cancel function runs"),
            ("rerun_functionrun", "Can rerun function runs"),
            ("retry_functionrun", "Can retry failed function runs"),
            ("view_payloads", "Can view payloads (event data, inputs, outputs, errors)"),
        ]
        indexes = [
            # (available_at, id): the claim's ORDER BY, so it reads the first rows and stops.
            models.Index(
                fields=["available_at", "id"],
                condition=Q(status__in=CLAIMABLE_STATUSES),
                name="inngest_run_claimable",
            ),
            # The newest-first run lists of the admin and the REST API, with no other filter.
            models.Index(fields=["-created_at"], name="inngest_run_created"),
            models.Index(fields=["function_id", "-created_at"], name="inngest_run_function"),
            models.Index(fields=["status", "-created_at"], name="inngest_run_status"),
            models.Index(fields=["lease_token"], name="inngest_run_lease"),
            # Counting a key's executing runs reads only those, never the key's history.
            models.Index(
                fields=["concurrency_key"],
                condition=~Q(concurrency_key="") & Q(status=RunStatus.RUNNING),
                name="inngest_run_concurrency",
            ),
            models.Index(
                fields=["concurrency_key_2"],
                condition=~Q(concurrency_key_2="") & Q(status=RunStatus.RUNNING),
                name="inngest_run_concurrency_2",
            ),
            # A full key's due runs, for the claim to park them without reading the queue.
            models.Index(
                fields=["concurrency_key", "available_at"],
                condition=Q(status__in=CLAIMABLE_STATUSES) & ~Q(concurrency_key=""),
                name="inngest_run_queued_key",
            ),
            models.Index(
                fields=["concurrency_key_2", "available_at"],
                condition=Q(status__in=CLAIMABLE_STATUSES) & ~Q(concurrency_key_2=""),
                name="inngest_run_queued_key_2",
            ),
            # A key's parked runs, oldest first, for the run that frees a slot to wake one.
            models.Index(
                fields=["concurrency_key", "parked_from", "id"],
                condition=Q(parked_from__isnull=False),
                name="inngest_run_parked",
            ),
            models.Index(
                fields=["concurrency_key_2", "parked_from", "id"],
                condition=Q(parked_from__isnull=False),
                name="inngest_run_parked_2",
            ),
            models.Index(
                fields=["function_id", "singleton_key"],
                condition=~Q(singleton_key="") & Q(status__in=CLAIMABLE_STATUSES),
                name="inngest_run_singleton",
            ),
            models.Index(
                fields=["function_id", "batch_key"],
                condition=~Q(batch_key="") & Q(status=RunStatus.QUEUED),
                name="inngest_run_open_batch",
            ),
            models.Index(
                fields=["function_id", "debounce_key"],
                condition=~Q(debounce_key="") & Q(status=RunStatus.QUEUED),
                name="inngest_run_debounce",
            ),
            # The metrics page's per-minute counts, and the parent and rerun links: only where
            # set, so a run's INSERT and claim add no NULL entries (the range filters and
            # look-ups that read them imply IS NOT NULL on both databases).
            _where_set("started_at", "inngest_run_started_set"),
            _where_set("finished_at", "inngest_run_finished_set"),
            _where_set("parent_run", "inngest_run_parent"),
            _where_set("rerun_of", "inngest_run_rerun_of"),
        ]

    def __str__(self) -> str:
        return f"{self.function_id} {self.id}"

    @classmethod
    def touch(cls, run_id: str, lease_token: str, lease_until: datetime) -> bool:
        """Extend the lease and reset the attempt counter after a step; False if lease lost."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                attempt=0, locked_until=lease_until, available_at=lease_until
            )
        )

    @classmethod
    def take_over(
        cls,
        run_id: str,
        handed_token: str,
        *,
        lease_token: str,
        locked_by: str,
        lease_until: datetime,
    ) -> bool:
        """Swap a running run's lease for a new holder's; False if `handed_token` lost it."""
        return bool(
            cls.objects.held(run_id, handed_token)
            .filter(status=RunStatus.RUNNING)
            .update(
                lease_token=lease_token,
                locked_by=locked_by,
                locked_until=lease_until,
                available_at=lease_until,
            )
        )

    @classmethod
    def request_cancel(cls, run_id: str, *, now: datetime, reason: str = "") -> bool:
        """Ask an unfinished run to stop; a run not executing now becomes due at once."""
        not_running = Q(status__in=[RunStatus.QUEUED, RunStatus.SLEEPING, RunStatus.WAITING])
        return bool(
            cls.objects.filter(pk=run_id, cancel_requested_at__isnull=True)
            .exclude(status__in=FINISHED_STATUSES)
            .update(
                cancel_requested_at=now,
                cancel_reason=reason[:MAX_NAME_LENGTH],
                available_at=models.Case(
                    models.When(not_running, then=models.Value(now)),
                    default=models.F("available_at"),
                ),
            )
        )

    @classmethod
    def cancel_requested(cls, run_id: str) -> bool:
        """Return True if someone asked this run to stop."""
        return cls.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists()

    @classmethod
    def mark_queued_for_retry(
        cls, run_id: str, lease_token: str, *, retry_at: datetime, error: dict[str, Any]
    ) -> bool:
        """Release the run to be retried at `retry_at` with one more failed attempt."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.QUEUED,
                attempt=models.F("attempt") + 1,
                available_at=_due_unless_cancelled(retry_at),
                error=error,
                **_RELEASED,
            )
        )

    @classmethod
    def release_claim(
        cls, run_id: str, lease_token: str, *, claimed_at: datetime, now: datetime
    ) -> bool:
        """Hand back a run claimed ahead and never started, due now for any worker."""
        # The claim stamped started_at only if no earlier pass had: undo just that stamp.
        started_at = models.Case(
            models.When(started_at=claimed_at, then=models.Value(None)),
            default=models.F("started_at"),
            output_field=models.DateTimeField(),
        )
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.QUEUED, available_at=now, started_at=started_at, **_RELEASED
            )
        )

    @classmethod
    def mark_sleeping(cls, run_id: str, lease_token: str, *, until: datetime) -> bool:
        """Release the run until `until`."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.SLEEPING,
                attempt=0,
                available_at=_due_unless_cancelled(until),
                **_RELEASED,
            )
        )

    @classmethod
    def mark_waiting(cls, run_id: str, lease_token: str, *, until: datetime) -> bool:
        """Release the run until `until` (a timeout) or until what it waits for arrives."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.WAITING,
                attempt=0,
                available_at=_due_unless_cancelled(until),
                **_RELEASED,
            )
        )

    @classmethod
    def wake(cls, run_id: str, *, now: datetime) -> int:
        """Make a waiting run due now: what it waited for has arrived."""
        # An executing run keeps its lease expiry; the flag makes its release due at once.
        return cls.objects.filter(pk=run_id).update(
            wake_requested_at=now,
            available_at=models.Case(
                models.When(status=RunStatus.WAITING, then=models.Value(now)),
                default=models.F("available_at"),
            ),
        )

    @classmethod
    def reopen_failed(cls, run_id: str, *, now: datetime) -> bool:
        """Queue a FAILED run again, keeping its completed steps; False if it is not FAILED."""
        reopened = cls.objects.filter(pk=run_id, status=RunStatus.FAILED).update(
            status=RunStatus.QUEUED,
            attempt=0,
            manual_retries=models.F("manual_retries") + 1,
            output=None,
            finished_at=None,
            cancel_requested_at=None,
            cancel_reason="",
            wake_requested_at=None,
            available_at=now,
            **_RELEASED,
        )
        if reopened:
            # The failed step's memo would replay as a StepError; without it the step runs again.
            # Reached through the relation, not imported: the steps module imports this one.
            step_model = cls._meta.get_field("steps").related_model
            step_model.objects.filter(run_id=run_id, status=StepStatus.FAILED).delete()
        return bool(reopened)

    @classmethod
    def mark_finished(
        cls,
        run_id: str,
        lease_token: str,
        *,
        status: RunStatus,
        now: datetime,
        output: Any = None,
        error: dict[str, Any] | None = None,
        cancel_reason: str | None = None,
        then_insert: rows.PendingInsert | None = None,
        memo: HeldMemo | None = None,
    ) -> bool:
        """Set a final status with its output or error and release the run.

        `then_insert` (a finish event) is stored with it, in the same statement on PostgreSQL,
        and so is `memo` (the last step's, held back by a checkpoint): on PostgreSQL a one-step
        run's step and finish are one statement. False, storing nothing, if the lease is lost.
        """
        also = None
        if memo is not None and connection.vendor == "postgresql":
            also = memo.insert_from("changed")
        elif memo is not None and not memo.record():
            return False
        extra = {} if cancel_reason is None else {"cancel_reason": cancel_reason[:MAX_NAME_LENGTH]}
        values = {
            **extra,
            "status": status,
            "output": output,
            "error": error,
            "finished_at": now,
            "available_at": now,
            **_RELEASED,
        }
        # Every run ends here: raw SQL, as the ORM's query building costs more than the UPDATE.
        return bool(
            rows.update(
                cls,
                values,
                "id = %s AND lease_token = %s",
                [run_id, lease_token],
                then_insert=then_insert,
                also=also,
            )
        )
