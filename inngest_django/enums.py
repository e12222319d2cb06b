"""Status and operation choices shared by models, executor and admin."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class RunStatus(models.TextChoices):
    QUEUED = "QUEUED", _("Queued")
    RUNNING = "RUNNING", _("Running")
    SLEEPING = "SLEEPING", _("Sleeping")
    WAITING = "WAITING", _("Waiting")
    COMPLETED = "COMPLETED", _("Completed")
    FAILED = "FAILED", _("Failed")
    CANCELLED = "CANCELLED", _("Cancelled")
    SKIPPED = "SKIPPED", _("Skipped")


# Runs in these statuses may be claimed once `available_at` has passed; for RUNNING that time
# is the lease expiry, which is how a dead worker's runs are resumed; for WAITING it is the
# wait's timeout, brought forward to now when the event or the invoked run arrives.
CLAIMABLE_STATUSES = (RunStatus.QUEUED, RunStatus.SLEEPING, RunStatus.WAITING, RunStatus.RUNNING)
FINISHED_STATUSES = (
    RunStatus.COMPLETED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.SKIPPED,
)


class StepStatus(models.TextChoices):
    COMPLETED = "COMPLETED", _("Completed")
    ERRORED = "ERRORED", _("Errored, will retry")
    FAILED = "FAILED", _("Failed")
    SLEEPING = "SLEEPING", _("Sleeping")
    WAITING = "WAITING", _("Waiting")


class StepOp(models.TextChoices):
    RUN = "RUN", _("Run")
    SLEEP = "SLEEP", _("Sleep")
    WAIT_FOR_EVENT = "WAIT_FOR_EVENT", _("Wait for event")
    INVOKE = "INVOKE", _("Invoke")
    SEND_EVENT = "SEND_EVENT", _("Send event")


class DeferStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending")
    CANCELLED = "CANCELLED", _("Cancelled")
    SCHEDULED = "SCHEDULED", _("Scheduled")
    REJECTED = "REJECTED", _("Rejected")


class WaitKind(models.TextChoices):
    EVENT = "EVENT", _("Wait for event")
    INVOKE = "INVOKE", _("Invoked run")
    CANCEL = "CANCEL", _("Cancel rule")


class WaitOutcome(models.TextChoices):
    EVENT = "EVENT", _("Event arrived")
    FINISHED = "FINISHED", _("Invoked run finished")
    TIMEOUT = "TIMEOUT", _("Timed out")
    RUN_ENDED = "RUN_ENDED", _("Run ended first")
