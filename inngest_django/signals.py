"""Signals sent on run lifecycle changes, for metrics and integrations."""

from __future__ import annotations

from django.dispatch import Signal

# sender=FunctionRun class, run=<FunctionRun>; sent as each pass of a run starts
run_started = Signal()
# sender=FunctionRun class, run=<FunctionRun>; sent after the finalize transaction commits
run_finished = Signal()
