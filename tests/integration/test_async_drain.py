"""Async handlers and parallel steps in this process: drain() and run_function()."""

from __future__ import annotations

import asyncio

import pytest

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.testing import run_function
from tests.helpers import orders_per_step, the_run

pytestmark = pytest.mark.django_db


def test_async_handler_runs_async_and_sync_steps_under_drain(drain):
    inngest.send({"name": "testapp/async-steps", "data": {"steps": 2}})
    drain()
    run = the_run("testapp-async-steps")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == {"fetched": [0, 10]}
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1}


def test_parallel_steps_return_results_in_order_under_drain(drain):
    inngest.send({"name": "testapp/parallel", "data": {"count": 4, "pause_s": 0.01}})
    drain()
    run = the_run("testapp-parallel-steps")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == {"results": [0, 1, 2, 3], "total": 6}


def test_async_parallel_under_drain(drain):
    inngest.send({"name": "testapp/async-parallel", "data": {"count": 3, "pause_s": 0.01}})
    drain()
    run = the_run("testapp-async-parallel")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == {"results": [0, 1, 2, 3]}


def test_run_function_runs_an_async_handler(inngest_client):
    @inngest_client.create_function(fn_id="a", trigger=inngest.TriggerEvent(event="t/a"))
    async def handler(ctx: inngest.Context) -> list:
        async def fetch() -> int:
            await asyncio.sleep(0)
            return 1

        first = await ctx.step.run("fetch", fetch)
        second = await ctx.step.run("add", lambda: first + 1)
        both = await ctx.group.parallel([lambda: ctx.step.run("p", fetch)])
        return [first, second, *both]

    result = run_function(handler)
    assert result.status == "COMPLETED", result.error
    assert result.output == [1, 2, 1]


def test_sync_handler_runs_an_async_step_callable(inngest_client, drain):
    async def fetch() -> int:
        await asyncio.sleep(0)
        return 7

    @inngest_client.create_function(fn_id="sync", trigger=inngest.TriggerEvent(event="t/sync"))
    def handler(ctx: inngest.Context) -> int:
        return ctx.step.run("fetch", fetch) + 1

    inngest.send({"name": "t/sync"})
    drain()
    run = the_run("test-sync")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == 8


def test_async_handler_sleeps_and_resumes(inngest_client, drain, advance_clock):
    @inngest_client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="t/nap"))
    async def handler(ctx: inngest.Context) -> list:
        first = await ctx.step.run("one", lambda: 1)
        await ctx.step.sleep("nap", "1h")
        return [first, await ctx.step.run("two", lambda: 2)]

    inngest.send({"name": "t/nap"})
    drain()
    assert the_run("test-nap").status == RunStatus.SLEEPING
    advance_clock(3601)
    drain()
    run = the_run("test-nap")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == [1, 2]


def test_async_step_failure_retries_then_raises_step_error(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="fails", trigger=inngest.TriggerEvent(event="t/fails"), retries=1
    )
    async def handler(ctx: inngest.Context) -> str:
        async def boom() -> None:
            raise ValueError("no")

        try:
            await ctx.step.run("boom", boom)
        except inngest.StepError as exc:
            return f"caught {exc.name}"
        return "not raised"

    inngest.send({"name": "t/fails"})
    drain()
    run = the_run("test-fails")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == "caught ValueError"


def test_async_handler_defers_a_function(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="cleanup")
    def cleanup(ctx: inngest.Context) -> str:
        return f"cleaned {ctx.event.data['what']}"

    @inngest_client.create_function(fn_id="defers", trigger=inngest.TriggerEvent(event="t/defer"))
    async def handler(ctx: inngest.Context) -> int:
        ctx.defer("cleanup", function=cleanup, data={"what": "cart"})
        return await ctx.step.run("work", lambda: 1)

    inngest.send({"name": "t/defer"})
    drain()
    assert the_run("test-defers").status == RunStatus.COMPLETED
    deferred = the_run("test-cleanup")
    assert deferred.status == RunStatus.COMPLETED, deferred.error
    assert deferred.output == "cleaned cart"
