"""AsyncRuns: a worker's event loop, holding up to ASYNC_RUNS runs of async functions at once."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.db import connections

from ..async_steps import on_orm_thread
from ..conf import app_settings
from ..connections import refresh_connections
from ..exceptions import FunctionNotFoundError
from ..models import FunctionRun
from ..registry import FunctionRegistry
from .async_execute import aexecute_run
from .logs import pass_failures_logged

logger = logging.getLogger("inngest_django.worker")


class AsyncRuns:
    """A thread running one event loop for a worker's async runs, and their database thread.

    The loop runs under async_to_sync, so the thread that called it serves every
    `sync_to_async(thread_sensitive=True)` call: one connection for all the runs' database
    work, taking turns, while their awaits (HTTP calls, sleeps) overlap.
    """

    def __init__(
        self,
        registry: FunctionRegistry,
        *,
        lock: threading.Lock,
        in_flight: dict[str, str],
        wake: threading.Event,
    ) -> None:
        self.registry = registry
        self.capacity = app_settings.ASYNC_RUNS
        self._lock = lock
        self._in_flight = in_flight
        self._wake = wake
        self.held = 0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def for_worker(
        cls, threads: int, registry: FunctionRegistry, **worker: Any
    ) -> AsyncRuns | None:
        """Return the loop for a worker with threads and async functions; else None.

        Without threads (drain()) an async run is a pass like any other, in the caller's
        thread, so it sees the caller's connection (and a test's transaction).
        """
        if threads <= 0 or not app_settings.ASYNC_RUNS:
            return None
        if not any(getattr(function, "is_async", False) for function in registry):
            return None
        return cls(registry, **worker)

    def room(self) -> int:
        """Return how many more async runs the loop would take now."""
        with self._lock:
            return max(self.capacity - self.held, 0)

    def takes(self, run: FunctionRun | None) -> bool:
        """Return True if `run` is of an async function, which this loop runs."""
        if run is None:
            return False
        try:
            return self.registry.get(run.function_id).is_async
        except FunctionNotFoundError:
            return False

    def submit(
        self, run_id: str, token: str, claimed_at: datetime, loaded: FunctionRun | None
    ) -> None:
        """Start a pass of a claimed async run on the loop; the worker holds it till it ends."""
        with self._lock:
            self.held += 1
        loop = self._start()
        loop.call_soon_threadsafe(self._begin, run_id, token, claimed_at, loaded)

    def stop(self) -> None:
        """Let the runs on the loop finish, then end it and its thread."""
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    # -- the loop's thread ---------------------------------------------------------------------

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="inngest-async", daemon=True)
            self._thread.start()
            self._ready.wait()
        assert self._loop is not None
        return self._loop

    def _main(self) -> None:
        try:
            async_to_sync(self._serve)()
        finally:
            # This thread ran the passes' database work: its connections end with it.
            connections.close_all()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _begin(
        self, run_id: str, token: str, claimed_at: datetime, loaded: FunctionRun | None
    ) -> None:
        task = asyncio.ensure_future(self._one(run_id, token, claimed_at, loaded))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(
        self, run_id: str, token: str, claimed_at: datetime, loaded: FunctionRun | None
    ) -> None:
        try:
            with pass_failures_logged(run_id):
                await on_orm_thread(refresh_connections)()
                await aexecute_run(
                    run_id,
                    lease_token=token,
                    registry=self.registry,
                    claimed_at=claimed_at,
                    loaded=loaded,
                )
        finally:
            with self._lock:
                self.held -= 1
                self._in_flight.pop(run_id, None)
            self._wake.set()
