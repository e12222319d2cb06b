"""FlowState: the pacing state of throttle and rate limit keys."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..names import MAX_NAME_LENGTH


class FlowState(models.Model):
    """The pacing state of one throttle or rate limit key: GCRA's theoretical arrival time."""

    function_id = models.CharField(_("function"), max_length=MAX_NAME_LENGTH)
    kind = models.CharField(_("kind"), max_length=16)
    key = models.CharField(_("key"), max_length=MAX_NAME_LENGTH, blank=True, default="")
    tat = models.DateTimeField(
        _("theoretical arrival time"),
        help_text=_("Starts are paced so that this time moves on by period / limit each."),
    )

    class Meta:
        verbose_name = _("flow control state")
        verbose_name_plural = _("flow control states")
        constraints = [
            models.UniqueConstraint(
                fields=["function_id", "kind", "key"], name="inngest_flow_state_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.function_id} {self.kind} {self.key}"
