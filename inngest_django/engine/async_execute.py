"""aexecute_run(): one pass of a claimed async run on a shared event loop, beside many others."""

from __future__ import annotations

import asyncio
from datetime import datetime

from ..async_steps import on_orm_thread
from ..exceptions import DecryptionError, FunctionNotFoundError
from ..models import FunctionRun
from ..registry import FunctionRegistry, default_registry
from .execute import after_pass, execute_run, load_claimed, unreadable
from .run_pass import RunPass


class AsyncRunPass(RunPass):
    """A pass whose `async def` handler runs on a loop shared with other runs' passes.

    All their database work takes turns on one thread and one connection, so no transaction
    may stay open across an await, where another run's work would join it: as for every
    async run, checkpointing is off (see RunPass._begin) and every step commits on its own.
    """

    async def aexecute(self) -> None:
        """Await the handler once, from the top, and persist how the pass ended."""
        try:
            if not await on_orm_thread(self._begin)():
                return
            try:
                result = await self.function.handler(self.ctx)
            except asyncio.CancelledError:
                # The worker is forced to stop: nothing of this pass stays; the lease ends.
                raise
            except BaseException as exc:
                await on_orm_thread(self._handler_raised)(exc)
                return
            await on_orm_thread(self._handler_returned)(result)
        finally:
            # Each hop to the database thread costs: none when nothing is open.
            if self.checkpoint.is_open:
                await on_orm_thread(self.checkpoint.rollback)()


async def aexecute_run(
    run_id: str,
    *,
    lease_token: str,
    registry: FunctionRegistry = default_registry,
    claimed_at: datetime | None = None,
    loaded: FunctionRun | None = None,
) -> None:
    """Execute one pass of a claimed run, awaiting an async handler on the running loop."""
    if loaded is None:
        loaded = (await on_orm_thread(load_claimed)([run_id])).get(run_id)
    run = loaded
    if run is None or run.lease_token != lease_token:
        return
    try:
        function = registry.get(run.function_id)
    except FunctionNotFoundError:
        function = None
    if function is None or not function.is_async:
        # Nothing to await: the sync path, on the database thread, handles it as usual.
        await on_orm_thread(execute_run)(
            run_id, lease_token=lease_token, registry=registry, claimed_at=claimed_at, loaded=run
        )
        return
    first_start = claimed_at is not None and run.started_at == claimed_at
    try:
        await AsyncRunPass(run, function, lease_token, registry, first_start=first_start).aexecute()
    except DecryptionError as exc:
        await on_orm_thread(unreadable)(run, lease_token, exc)
    if run.concurrency_key or run.concurrency_key_2:
        await on_orm_thread(after_pass)(run)
