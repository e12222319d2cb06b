"""Testing helpers: run_function() runs a handler in memory; drain() runs the worker until idle."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from .. import clock
from ..idle import next_due_at
from ..registry import FunctionRegistry, default_registry
from ..worker import Worker
from ._defers import DeferCall, RejectedDefer
from ._runner import RunResult, run_function
from ._stubs import Timeout, UnstubbedStepError

__all__ = [
    "DeferCall",
    "RejectedDefer",
    "RunResult",
    "Timeout",
    "UnstubbedStepError",
    "drain",
    "isolated_registry",
    "run_function",
]


# -- the worker in this process ----------------------------------------------------------------


def drain(timeout: float = 10.0, *, registry: FunctionRegistry = default_registry) -> None:
    """Run due work in this thread until nothing is runnable now or within `timeout` seconds.

    Sleeps only for runs that become due (sleeps, retries) before the deadline, and never
    longer than `timeout` in total. Cron ticks are fired when due but never waited for.
    """
    # Executed here whatever EXECUTOR says: drain() is for tests and scripts, not a cluster.
    worker = Worker(threads=0, worker_id="drain", registry=registry, executor="worker")
    deadline = clock.monotonic() + timeout
    while True:
        if worker.run_once():
            continue
        now = clock.now()
        due = next_due_at(now)
        remaining = deadline - clock.monotonic()
        if due is None or remaining <= 0 or due > now + timedelta(seconds=remaining):
            return
        clock.sleep(min(max((due - now).total_seconds(), 0.01), remaining))


@contextmanager
def isolated_registry(registry: FunctionRegistry = default_registry) -> Iterator[FunctionRegistry]:
    """Let a test register functions that disappear afterwards."""
    saved, sources = registry.snapshot(), registry.sources()
    try:
        yield registry
    finally:
        registry.restore(saved, sources=sources)
