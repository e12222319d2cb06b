"""WorkerHeartbeat: one row per worker process, beaten every WORKER_HEARTBEAT_SECONDS."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.utils.translation import gettext_lazy as _


class WorkerState(models.TextChoices):
    RUNNING = "running", _("Running")
    STALE = "stale", _("Stale")
    STOPPED = "stopped", _("Stopped")


class WorkerHeartbeat(models.Model):
    """A worker process: who and where it is, and when it last said it was alive."""

    worker_id = models.CharField(
        _("worker id"), max_length=255, primary_key=True, help_text=_("host:pid:random")
    )
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("pid"))
    threads = models.PositiveIntegerField(_("threads"))
    executor = models.CharField(_("executor"), max_length=32, default="worker")
    version = models.CharField(_("version"), max_length=32, blank=True, default="")
    functions = models.PositiveIntegerField(
        _("functions"), default=0, help_text=_("Functions registered in the worker.")
    )
    started_at = models.DateTimeField(_("started at"))
    last_heartbeat = models.DateTimeField(_("last heartbeat"))
    heartbeat_seconds = models.FloatField(
        _("heartbeat interval"), help_text=_("Seconds between this worker's heartbeats.")
    )
    runs_in_hand = models.PositiveIntegerField(
        _("runs in hand"),
        default=0,
        help_text=_("Runs claimed and not finished, at the last beat."),
    )
    stopped_at = models.DateTimeField(
        _("stopped at"),
        null=True,
        blank=True,
        help_text=_("Set when the worker exited cleanly; a killed worker never sets it."),
    )

    class Meta:
        verbose_name = _("worker")
        verbose_name_plural = _("workers")
        ordering = ["-last_heartbeat"]
        indexes = [models.Index(fields=["last_heartbeat"], name="inngest_worker_beat")]

    def __str__(self) -> str:
        return self.worker_id

    def stale_after(self, beats: int) -> datetime:
        """Return the time after which, with no beat, this worker counts as stale."""
        return self.last_heartbeat + timedelta(seconds=self.heartbeat_seconds * beats)

    def state(self, now: datetime, beats: int) -> WorkerState:
        """Return stopped (a clean exit), stale (`beats` intervals missed) or running."""
        if self.stopped_at is not None:
            return WorkerState.STOPPED
        if now > self.stale_after(beats):
            return WorkerState.STALE
        return WorkerState.RUNNING
