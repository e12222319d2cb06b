"""SideBySideSteps: the steps `group.parallel` planned, run at once, each committed on its own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.db import connection, connections, transaction

from .. import clock
from .._interrupts import Interrupt, LeaseLost, RetryScheduled
from ..async_steps import Recorded, await_step, on_orm_thread
from ..conf import app_settings
from ..enums import StepStatus
from ..models import FunctionRun
from ..serialization import dump_step_output, error_to_json
from ..steps import PlannedStep, is_async_callable
from .durable_steps import DurableSteps
from .group_commit import flush_group
from .logs import log_run
from .rules import stops_the_process

# What one planned step came to: None when it completed, else the error it raised.
Outcome = BaseException | None


class SideBySideSteps(DurableSteps):
    """DurableSteps that can also run a round of `group.parallel`'s planned steps at once.

    Each step runs in its own transaction with its own memo: sync callables on a pool of up to
    PARALLEL_STEP_THREADS threads (each with its own connection; on SQLite in turn), async ones
    on the event loop with their result recorded afterwards. Failures are recorded once all
    have ended: a retry runs only the steps that failed, as the others have memos by then.
    """

    def run_side_by_side(self, planned: Sequence[PlannedStep]) -> None:
        """Run `planned` at once and record each; raise RetryScheduled if any will retry."""
        alone = self._before_round()
        outcomes = self._in_pool(planned, alone=alone)
        self._after_round(planned, outcomes)

    async def arun_side_by_side(self, planned: Sequence[PlannedStep]) -> None:
        """The async handler's round: async callables awaited together on the event loop."""
        alone = await on_orm_thread(self._before_round)()
        awaited = [p for p in planned if is_async_callable(p.fn)]
        threaded = [p for p in planned if not is_async_callable(p.fn)]
        pool_round: Any = None
        if threaded and alone:
            # Started now, so the sync steps run while the async ones are awaited.
            pool_round = asyncio.ensure_future(on_orm_thread(self._in_pool)(threaded, alone=True))
        elif threaded:
            pool_round = asyncio.get_running_loop().run_in_executor(None, self._in_pool, threaded)
        recorded = await asyncio.gather(*(self._await_one(p) for p in awaited))
        by_key: dict[str, Outcome] = dict(zip([p.key for p in awaited], recorded, strict=True))
        if pool_round is not None:
            by_key.update(zip([p.key for p in threaded], await pool_round, strict=True))
        outcomes = [by_key[p.key] for p in planned]
        await on_orm_thread(self._after_round)(planned, outcomes)

    # -- one round ---------------------------------------------------------------------------

    def _before_round(self) -> bool:
        """Commit what the pass holds open; return True if sync steps must run on this thread."""
        self._stop_if_cancelled()
        # The steps commit on other connections: an open transaction here would hold locks
        # (the run's row, SQLite's write lock) they wait for.
        self.checkpoint.commit()
        flush_group()
        # SQLite has one writer: a step's transaction holds the write lock while its callable
        # runs, so threads would only queue for it. There the steps take turns on this thread.
        return connection.in_atomic_block or connection.vendor == "sqlite"

    def _in_pool(self, planned: Sequence[PlannedStep], *, alone: bool = False) -> list[Outcome]:
        """Run sync planned steps on a bounded thread pool; return their outcomes in order.

        `alone`: the caller's connection is inside a transaction (drain() in a test, say),
        which other connections can neither see nor wait out: the steps run here in turn.
        """
        if alone:
            return [self._commit_step(p, p.fn, clock.now()) for p in planned]
        if not planned:
            return []
        threads = min(len(planned), app_settings.PARALLEL_STEP_THREADS)
        with ThreadPoolExecutor(threads, thread_name_prefix="inngest-step") as pool:
            return list(pool.map(self._threaded_step, planned))

    def _threaded_step(self, planned: PlannedStep) -> Outcome:
        try:
            return self._commit_step(planned, planned.fn, clock.now())
        finally:
            # The pool's threads end with the round: so do their connections.
            connections.close_all()

    async def _await_one(self, planned: PlannedStep) -> Outcome:
        assert self.ctx is not None
        with self.ctx.step.running(planned.key):
            recorded = await await_step(planned.fn, planned.args)
        return await on_orm_thread(self._commit_step)(planned, recorded, recorded.started_at)

    def _commit_step(self, planned: PlannedStep, fn: Any, started: datetime) -> Outcome:
        """Run one step and write its memo in one transaction; return its error, if any."""
        key = planned.key
        try:
            with transaction.atomic():
                if self._touch_first:
                    self._touch()
                if isinstance(fn, Recorded):
                    result = fn()
                elif self.ctx is not None:
                    with self.ctx.step.running(key):
                        result = _call(fn, planned.args)
                else:
                    result = _call(fn, planned.args)
                stored = dump_step_output(key, result, planned.output_type)
                self._record_completed(
                    key, started, stored, touched=self._touch_first, op=planned.op
                )
        except LeaseLost as lost:
            return lost
        except Interrupt:
            raise
        except BaseException as exc:
            if stops_the_process(exc):
                raise
            exc.started_at = started  # type: ignore[attr-defined]
            return exc
        return None

    def _after_round(self, planned: Sequence[PlannedStep], outcomes: list[Outcome]) -> None:
        """Record the round's failures; raise RetryScheduled if any step will run again."""
        for outcome in outcomes:
            if isinstance(outcome, Interrupt):
                raise outcome
        failed = [(p, exc) for p, exc in zip(planned, outcomes, strict=True) if exc is not None]
        if not failed:
            if self.ctx is not None:
                # As after any step that completes: the next step starts at attempt 0.
                self.ctx.attempt = 0
            return
        attempt = self._attempt
        retry_at: datetime | None = None
        with self.checkpoint.write():
            self.defers.flush()
            for step, exc in failed:
                at = self._retry_at(exc, attempt)
                error = error_to_json(exc)
                status = StepStatus.ERRORED if at is not None else StepStatus.FAILED
                started = getattr(exc, "started_at", None) or clock.now()
                self._save_step(step.key, step.op, status, started, error=error)
                if at is not None:
                    retry_at = at if retry_at is None else min(retry_at, at)
                log_run(
                    logging.WARNING,
                    "Parallel step failed step=%s attempt=%d error=%s: %s",
                    self.run,
                    "step_retry_scheduled" if at is not None else "step_failed",
                    step.key,
                    attempt,
                    error["name"],
                    error["message"],
                )
            if retry_at is None:
                # Failed for good: the branches see StepError when the next round replays them.
                self._touch()
            elif not FunctionRun.mark_queued_for_retry(
                self.run.pk,
                self.lease_token,
                retry_at=self._release_until(retry_at),
                error=error_to_json(failed[0][1]),
            ):
                raise LeaseLost()
        if retry_at is not None:
            raise RetryScheduled(failed[0][0].key, retry_at)


def _call(fn: Any, args: tuple[Any, ...]) -> Any:
    """Call a sync step callable, or run an async one to its end from this pool thread."""
    if is_async_callable(fn):
        return async_to_sync(fn)(*args)
    return fn(*args)
