"""The durable engine: a pass over a claimed run, its steps, and the one finalize()."""

from __future__ import annotations

from .execute import execute_run, load_claimed
from .finalize import FinishEvents, finalize
from .run_pass import RunPass

__all__ = ["FinishEvents", "RunPass", "execute_run", "finalize", "load_claimed"]
