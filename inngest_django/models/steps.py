"""StepRun: the memo of one step of one run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, models
from django.utils.translation import gettext_lazy as _

from ..encryption import to_stored
from ..enums import StepOp, StepStatus
from ..names import MAX_NAME_LENGTH
from ..sealed_fields import SealedJSONField
from .cursors import prepared_cursor
from .queue import _adapt
from .runs import FunctionRun


class StepRun(models.Model):
    """The memo of one step of one run: what it returned or how it failed."""

    # No index of its own: the unique (run, step_key) index below leads with it.
    run = models.ForeignKey(
        FunctionRun,
        verbose_name=_("run"),
        on_delete=models.CASCADE,
        related_name="steps",
        db_index=False,
    )
    step_key = models.CharField(
        _("step id"),
        max_length=MAX_NAME_LENGTH,
        help_text=_("The step id, with :N for the n-th repeat."),
    )
    op = models.CharField(_("operation"), max_length=16, choices=StepOp.choices)
    status = models.CharField(_("status"), max_length=16, choices=StepStatus.choices)
    output = SealedJSONField(_("output"), null=True, blank=True)
    error = SealedJSONField(_("error"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    wake_at = models.DateTimeField(
        _("wakes at"), null=True, blank=True, help_text=_("For sleeps: when the run resumes.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_key"], name="inngest_step_unique_key"),
        ]

    def __str__(self) -> str:
        return self.step_key


@dataclass(frozen=True)
class HeldMemo:
    """A completed step's memo, to be stored only while `lease_token` holds the run."""

    run_id: str
    lease_token: str
    step_key: str
    op: str
    status: str
    output: Any
    started_at: datetime
    finished_at: datetime

    def record(self) -> bool:
        """Insert the memo if the lease holds the run; return False, inserting nothing, if not."""
        # FOR SHARE keeps a claimer from taking the run between this check and the commit.
        lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
        sql, params = self.insert_from(
            f"{connection.ops.quote_name(FunctionRun._meta.db_table)} "
            f"WHERE id = %s AND lease_token = %s{lock}"
        )
        with prepared_cursor() as cursor:
            cursor.execute(sql, [*params, self.run_id, self.lease_token])
            return cursor.rowcount == 1

    def insert_from(self, source: str) -> tuple[str, list[Any]]:
        """Return `INSERT ... SELECT ... FROM source` of the memo, one row per row of `source`.

        Raw SQL: the ORM's per-call query building costs more than the statement itself.
        """
        sql = f"{_memo_insert(connection.vendor)} FROM {source}"
        params = [
            self.run_id,
            self.step_key,
            self.op,
            self.status,
            None if self.output is None else json.dumps(to_stored(self.output)),
            _adapt(self.finished_at),
            _adapt(self.started_at),
            _adapt(self.finished_at),
        ]
        return sql, params


@cache
def _memo_insert(vendor: str) -> str:
    """Return a memo's `INSERT ... SELECT <values>`, built once: every step sends one."""
    meta = StepRun._meta
    quote = connection.ops.quote_name
    names = ("run", "step_key", "op", "status", "output", "attempts", "created_at")
    columns = ", ".join(
        quote(meta.get_field(name).column) for name in (*names, "started_at", "finished_at")
    )
    json_param = "%s::jsonb" if vendor == "postgresql" else "%s"
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "
        f"SELECT %s, %s, %s, %s, {json_param}, 1, %s, %s, %s"
    )
