"""Functions the integration tests run in worker subprocesses."""

from __future__ import annotations

import json
import os
import time

import inngest_django as inngest

from .models import Call, Order

client = inngest.Inngest(app_id="testapp")

# Worker subprocesses started by tests/conftest.py read these; a plain process ignores them.
JOURNAL_ENV = "INNGEST_DJANGO_TEST_JOURNAL"
HOLD_AFTER_ENV = "INNGEST_DJANGO_TEST_HOLD_AFTER"
CRON_ENV = "INNGEST_DJANGO_TEST_CRON"
LIMITED_ENV = "INNGEST_DJANGO_TEST_LIMITED"
EVERY_MINUTE = "* * * * *"


def _record_call(run_id: str, name: str) -> None:
    Call.objects.create(run_id=run_id, name=name, pid=os.getpid())


def _journal(run_id: str, step_key: str, phase: str) -> None:
    """Append a line to the journal file: outside any transaction, so rollbacks keep it."""
    path = os.environ.get(JOURNAL_ENV)
    if not path:
        return
    line = json.dumps(
        {"run": run_id, "step": step_key, "phase": phase, "pid": os.getpid(), "t": time.time()}
    )
    # One write of one short line in append mode: lines from concurrent workers never interleave.
    with open(path, "a") as journal:
        journal.write(line + "\n")


@client.create_function(fn_id="write-orders", trigger=inngest.TriggerEvent(event="testapp/orders"))
def write_orders(ctx: inngest.Context) -> dict:
    """Each step writes one Order row in the step's transaction; data.pause_s slows each step."""
    steps = int(ctx.event.data.get("steps", 3))
    pause = float(ctx.event.data.get("pause_s", 0))
    for index in range(steps):

        def write(index: int = index) -> int:
            Order.objects.create(reference=ctx.run_id, step_key=f"s{index}")
            time.sleep(pause)
            return index

        ctx.step.run(f"s{index}", write)
    return {"steps": steps}


@client.create_function(fn_id="record-steps", trigger=inngest.TriggerEvent(event="testapp/steps"))
def record_steps(ctx: inngest.Context) -> dict:
    """Each step writes an Order and a Call row in its transaction and journals each call.

    data.steps sets the number of steps and data.pause_s how long each step holds its
    transaction open; data.linger_s how long the handler waits after its last step, outside
    the steps (a run in hand that holds no SQLite write lock unless checkpointing). A worker
    whose INNGEST_DJANGO_TEST_HOLD_AFTER names a step journals "held" once that step has
    returned, then blocks, so a test can kill it between steps (the step has committed,
    unless checkpointing holds it open for the run's next write).
    """
    steps = int(ctx.event.data.get("steps", 3))
    pause = float(ctx.event.data.get("pause_s", 0))
    for index in range(steps):
        step_key = f"s{index}"

        def write(step_key: str = step_key) -> str:
            _journal(ctx.run_id, step_key, "start")
            Order.objects.create(reference=ctx.run_id, step_key=step_key)
            _record_call(ctx.run_id, step_key)
            time.sleep(pause)
            _journal(ctx.run_id, step_key, "end")
            return step_key

        ctx.step.run(step_key, write)
        if os.environ.get(HOLD_AFTER_ENV) == step_key:
            _journal(ctx.run_id, step_key, "held")
            time.sleep(600)
    time.sleep(float(ctx.event.data.get("linger_s", 0)))
    return {"steps": steps}


# Registered only where a test asks for it: a due tick of a cron that every drain() and worker
# sees would add runs to unrelated tests.
if os.environ.get(CRON_ENV) == "1":

    @client.create_function(fn_id="every-minute", trigger=inngest.TriggerCron(cron=EVERY_MINUTE))
    def every_minute(ctx: inngest.Context) -> dict:
        """Return the tick's event data; tests count this function's runs per tick."""
        return dict(ctx.event.data)


@inngest.create_defer(client, id="cleanup", retries=2)
def cleanup(ctx: inngest.Context) -> dict:
    """Write one Order row for the defer that started this run, in a step."""
    parent = ctx.parents[0]
    key = f"cleanup-{ctx.event.data['n']}"

    def write() -> str:
        Order.objects.create(reference=parent.run_id, step_key=key)
        return key

    return {"wrote": ctx.step.run("write", write)}


@client.create_function(fn_id="defer-cleanup", trigger=inngest.TriggerEvent(event="testapp/defer"))
def defer_cleanup(ctx: inngest.Context) -> dict:
    """Three steps writing Orders; "keep" is deferred inside a step, "drop" outside and cancelled.

    data.pause_s makes each step hold its transaction open, so a kill lands mid-run.
    """
    pause = float(ctx.event.data.get("pause_s", 0))

    def write(step_key: str) -> str:
        Order.objects.create(reference=ctx.run_id, step_key=step_key)
        time.sleep(pause)
        return step_key

    def write_and_defer() -> str:
        ctx.defer("keep", function=cleanup, data={"n": 1})
        return write("a")

    ctx.step.run("a", write_and_defer)
    drop = ctx.defer("drop", function=cleanup, data={"n": 2})
    ctx.step.run("b", write, "b")
    ctx.step.run("c", write, "c")
    drop.cancel()
    return {"steps": 3}


# Registered only where a test asks for it: a function with a concurrency limit switches every
# worker to the concurrency-aware claim without claiming ahead, which the other tests must not
# be limited to.
if os.environ.get(LIMITED_ENV) == "1":

    @client.create_function(
        fn_id="limited",
        trigger=inngest.TriggerEvent(event="testapp/limited"),
        concurrency=[inngest.Concurrency(limit=2)],
    )
    def limited(ctx: inngest.Context) -> None:
        """One step that journals when it starts and ends; at most two runs execute at once."""

        def work() -> None:
            _journal(ctx.run_id, "work", "start")
            time.sleep(float(ctx.event.data.get("pause_s", 0.2)))
            _journal(ctx.run_id, "work", "end")

        ctx.step.run("work", work)


# Registered with the rest: the chaos suite's, the django_q executor tests', the bad-input
# tests' and the encryption tests' functions.
from . import (  # noqa: E402, F401
    async_functions,
    bad_input_functions,
    chaos_functions,
    django_q_functions,
    encryption_functions,
)
