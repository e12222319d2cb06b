"""App tables that steps write to, to prove step writes commit exactly once."""

from __future__ import annotations

from django.db import models


class Order(models.Model):
    """A row a step creates."""

    reference = models.CharField("reference", max_length=100)
    step_key = models.CharField("step key", max_length=100, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reference", "step_key"], name="testapp_order_unique")
        ]

    def __str__(self) -> str:
        return f"{self.reference}/{self.step_key}"


class Call(models.Model):
    """One row per call of a step callable, written outside the step's transaction."""

    run_id = models.CharField("run id", max_length=26)
    name = models.CharField("name", max_length=100)
    pid = models.IntegerField("pid", default=0)
    at = models.DateTimeField("at", auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.run_id}:{self.name}"


class ChaosRow(models.Model):
    """A row a chaos-suite step writes; no unique key, so a step committed twice shows twice."""

    run_id = models.CharField("run id", max_length=26, db_index=True)
    step_key = models.CharField("step key", max_length=100)
    pid = models.IntegerField("pid", default=0)

    def __str__(self) -> str:
        return f"{self.run_id}:{self.step_key}"
