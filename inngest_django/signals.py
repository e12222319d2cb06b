"""Signals sent on run lifecycle changes, for metrics and integrations."""

from __future__ import annotations

from django.dispatch import Signal

# sender=FunctionRun class, run=<FunctionRun>
run_started = Signal()
# sender=FunctionRun class, run=<FunctionRun> (status is final)
run_finished = Signal()
# sender=StepRun class, run_id=str, step_key=str, status=str
step_finished = Signal()
