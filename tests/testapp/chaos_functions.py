"""Chaos-suite functions: five journaled steps writing plain rows, a kept and a cancelled defer."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.dispatch import receiver

import inngest_django as inngest
from inngest_django import signals
from inngest_django.models import FunctionRun

from .models import ChaosRow

client = inngest.Inngest(app_id="chaos")

# Worker processes started by tests/chaos write one journal file per process into this folder;
# any other process journals nothing.
JOURNAL_DIR_ENV = "INNGEST_DJANGO_CHAOS_JOURNAL_DIR"
STEP_KEYS = ("s0", "s1", "s2", "s3", "s4")
KEPT, DROPPED = "keep", "drop"

# The lease token of the pass each thread is executing, keyed by run id: step callables are
# given no context, and the journal must tell two workers' passes of one run apart.
_passes = threading.local()


@receiver(signals.run_started, sender=FunctionRun)
def remember_lease(sender: type[FunctionRun], run: FunctionRun, **kwargs: Any) -> None:
    """Note the lease token under which this thread now executes `run`."""
    leases = getattr(_passes, "leases", None)
    if leases is None:
        leases = _passes.leases = {}
    leases[run.pk] = run.lease_token


def _journal(entry: dict[str, Any]) -> None:
    """Append one line to this process's journal, outside any transaction."""
    directory = os.environ.get(JOURNAL_DIR_ENV)
    if not directory:
        return
    line = (json.dumps(entry) + "\n").encode()
    # One write() on an O_APPEND descriptor: lines from this process's threads never interleave,
    # and a line written survives a SIGKILL a moment later (it is in the kernel already).
    fd = os.open(
        os.path.join(directory, f"{os.getpid()}.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT
    )
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def journaled(run_id: str, step_key: str, body: Callable[[], None]) -> Callable[[], str]:
    """Wrap a step body so each attempt journals its start, its end and, once durable, its commit.

    The end is journaled whether the body returns or raises; the commit only from the step
    transaction's on_commit, so attempts that roll back (a lost lease, a dead database) show
    as started and ended but never committed, and attempts cut short by SIGKILL as started only.
    """

    def attempt() -> str:
        mark = {
            "attempt": uuid.uuid4().hex,
            "run": run_id,
            "step": step_key,
            "token": getattr(_passes, "leases", {}).get(run_id, ""),
            "pid": os.getpid(),
        }
        _journal({**mark, "phase": "start", "t": time.time()})
        transaction.on_commit(lambda: _journal({**mark, "phase": "commit", "t": time.time()}))
        try:
            body()
        finally:
            _journal({**mark, "phase": "end", "t": time.time()})
        return step_key

    return attempt


@inngest.create_defer(client, id="cleanup", retries=2)
def chaos_cleanup(ctx: inngest.Context) -> str:
    """Write one row for the defer that started this run, under the parent's run id."""
    parent = ctx.parents[0].run_id
    key = f"cleanup-{ctx.event.data['defer']}"

    def write() -> None:
        ChaosRow.objects.create(run_id=parent, step_key=key, pid=os.getpid())

    return ctx.step.run("write", journaled(ctx.run_id, "write", write))


@client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="chaos/steps.requested"))
def chaos_steps(ctx: inngest.Context) -> dict[str, int]:
    """Five steps that each write a plain row; defer "keep" inside s0, "drop" outside, cancelled.

    data.pause_s holds each step's transaction open that long, so kills land inside steps too.
    """
    pause = float(ctx.event.data.get("pause_s", 0))

    def write(step_key: str) -> Callable[[], None]:
        def body() -> None:
            ChaosRow.objects.create(run_id=ctx.run_id, step_key=step_key, pid=os.getpid())
            if step_key == "s0":
                # Written in s0's transaction: gone with it if the step rolls back.
                ctx.defer(KEPT, function=chaos_cleanup, data={"defer": KEPT})
            time.sleep(pause)

        return body

    ctx.step.run("s0", journaled(ctx.run_id, "s0", write("s0")))
    # Outside steps: written with s1's commit, and found again by id on every replay.
    dropped = ctx.defer(DROPPED, function=chaos_cleanup, data={"defer": DROPPED})
    ctx.step.run("s1", journaled(ctx.run_id, "s1", write("s1")))
    ctx.step.run("s2", journaled(ctx.run_id, "s2", write("s2")))
    dropped.cancel()
    for step_key in STEP_KEYS[3:]:
        ctx.step.run(step_key, journaled(ctx.run_id, step_key, write(step_key)))
    return {"steps": len(STEP_KEYS)}
