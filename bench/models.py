"""The row the raw ORM commit benchmark inserts."""

from __future__ import annotations

from django.db import models


class BenchRow(models.Model):
    """One committed insert of the ORM baseline."""

    number = models.IntegerField("number")
    label = models.CharField("label", max_length=64, default="")

    def __str__(self) -> str:
        return f"{self.number} {self.label}"
