"""Async handlers and parallel steps the integration tests run in worker subprocesses."""

from __future__ import annotations

import asyncio
import time

import inngest_django as inngest

from .inngest_functions import _journal, _record_call, client
from .models import Order


@client.create_function(
    fn_id="async-steps", trigger=inngest.TriggerEvent(event="testapp/async-steps"), retries=2
)
async def async_steps(ctx: inngest.Context) -> dict:
    """An async handler: per index an async step that awaits, then a sync step that writes.

    data.steps sets how many pairs, data.pause_s how long each awaits (async) and holds its
    transaction open (sync), so a test can kill the worker inside one.
    """
    steps = int(ctx.event.data.get("steps", 2))
    pause = float(ctx.event.data.get("pause_s", 0))
    fetched = []
    for index in range(steps):

        async def fetch(index: int = index) -> int:
            _journal(ctx.run_id, f"a{index}", "start")
            await asyncio.sleep(pause)
            _journal(ctx.run_id, f"a{index}", "end")
            return index * 10

        def write(step_key: str = f"s{index}") -> str:
            _journal(ctx.run_id, step_key, "start")
            Order.objects.create(reference=ctx.run_id, step_key=step_key)
            _record_call(ctx.run_id, step_key)
            time.sleep(pause)
            _journal(ctx.run_id, step_key, "end")
            return step_key

        fetched.append(await ctx.step.run(f"a{index}", fetch))
        await ctx.step.run(f"s{index}", write)
    return {"fetched": fetched}


@client.create_function(
    fn_id="async-sleeper", trigger=inngest.TriggerEvent(event="testapp/async-sleeper")
)
async def async_sleeper(ctx: inngest.Context) -> float:
    """One async step that waits data.pause_s seconds; many runs wait side by side."""

    async def wait() -> float:
        _journal(ctx.run_id, "wait", "start")
        await asyncio.sleep(float(ctx.event.data.get("pause_s", 0.5)))
        _journal(ctx.run_id, "wait", "end")
        return time.time()

    return await ctx.step.run("wait", wait)


def _parallel_work(ctx: inngest.Context, index: int) -> int:
    """A sync parallel step: journals its start and end around data.pause_s of waiting."""
    key = f"p{index}"
    _journal(ctx.run_id, key, "start")
    Order.objects.create(reference=ctx.run_id, step_key=key)
    time.sleep(float(ctx.event.data.get("pause_s", 0.3)))
    if index == ctx.event.data.get("flaky") and ctx.attempt == 0:
        _journal(ctx.run_id, key, "fail")
        raise RuntimeError(f"{key} fails on its first attempt")
    _journal(ctx.run_id, key, "end")
    return index


@client.create_function(
    fn_id="parallel-steps", trigger=inngest.TriggerEvent(event="testapp/parallel"), retries=2
)
def parallel_steps(ctx: inngest.Context) -> dict:
    """A sync handler: data.count parallel steps, then one more step after them all."""
    count = int(ctx.event.data.get("count", 3))
    results = ctx.group.parallel(
        [
            lambda index=index: ctx.step.run(f"p{index}", _parallel_work, ctx, index)
            for index in range(count)
        ]
    )
    total = ctx.step.run("total", lambda: sum(results))
    return {"results": list(results), "total": total}


@client.create_function(
    fn_id="async-parallel", trigger=inngest.TriggerEvent(event="testapp/async-parallel")
)
async def async_parallel(ctx: inngest.Context) -> dict:
    """An async handler: data.count async parallel steps and one sync one, side by side."""
    count = int(ctx.event.data.get("count", 3))
    pause = float(ctx.event.data.get("pause_s", 0.3))

    async def wait(index: int) -> int:
        _journal(ctx.run_id, f"p{index}", "start")
        await asyncio.sleep(pause)
        _journal(ctx.run_id, f"p{index}", "end")
        return index

    branches = [
        lambda index=index: ctx.step.run(f"p{index}", wait, index) for index in range(count)
    ]
    branches.append(lambda: ctx.step.run(f"p{count}", _parallel_work, ctx, count))
    results = await ctx.group.parallel(branches)
    return {"results": list(results)}
