"""Functions that feed the engine bad input: tests/integration/test_bad_input.py drives them."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

import inngest_django as inngest
from inngest_django.conf import app_settings

client = inngest.Inngest(app_id="bad")

# A worker started with this set to "2" runs the second deploy: "bad-removable" is gone and
# "bad-renamed" calls its first step "load-b" instead of "load-a".
DEPLOY_ENV = "INNGEST_DJANGO_TEST_BAD_INPUT_DEPLOY"
SECOND_DEPLOY = os.environ.get(DEPLOY_ENV) == "2"


class Boom(BaseException):
    """A user-defined BaseException subclass, raised by a handler or a step."""


class Ticket(BaseModel):
    """The data a ticket carries: a number and a note."""

    n: int
    note: str = ""


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


def _huge_text() -> str:
    return "x" * (app_settings.MAX_STEP_OUTPUT_BYTES + 1)


# What each case returns (or raises); the handler returns it, or a step does, by the case's prefix.
_VALUES: dict[str, Callable[[], Any]] = {
    "object": object,
    "set": lambda: {1, 2},
    "nan": lambda: math.nan,
    "bytes": lambda: b"bytes",
    "huge": _huge_text,
    "deep": lambda: _nested(100_000),
    "recurse": lambda: _recurse(0),
}
_RAISES: dict[str, Callable[[], BaseException]] = {
    "system-exit": lambda: SystemExit("handler called sys.exit"),
    "keyboard-interrupt": lambda: KeyboardInterrupt("handler raised KeyboardInterrupt"),
    "generator-exit": lambda: GeneratorExit("handler raised GeneratorExit"),
    "boom": lambda: Boom("handler raised Boom"),
}


def _produce(what: str) -> Any:
    if what in _RAISES:
        raise _RAISES[what]()
    return _VALUES[what]()


@inngest.create_defer(client, id="ticket", schema=Ticket, retries=0)
def ticket(ctx: inngest.Context) -> dict:
    """Return the ticket's number; the schema checks the deferred data."""
    return {"n": ctx.event.data.n}


@client.create_function(fn_id="input", trigger=inngest.TriggerEvent(event="bad/input"), retries=0)
def bad_input(ctx: inngest.Context) -> Any:
    """Do the bad thing data.case names: "step-<what>" in a step, "run-<what>" as the handler."""
    case = ctx.event.data["case"]
    if case == "event-huge":
        blob = "x" * (app_settings.MAX_EVENT_BYTES + 1)
        return ctx.step.send_event("send", {"name": "bad/huge", "data": {"blob": blob}})
    if case == "defer-huge":
        ctx.defer("big", function=ticket, data={"n": 1, "note": _huge_text()})
        ctx.defer("text", function=ticket, data=_huge_text())
        ctx.defer("small", function=ticket, data={"n": 2})
        return "parent completed"
    if case == "schema":
        # Event triggers take no schema: a handler validates its data itself.
        return Ticket.model_validate(ctx.event.data["ticket"]).model_dump()
    if case == "memo-type":
        loaded = ctx.step.run("typed", lambda: Ticket(n=1), output_type=Ticket)
        ctx.step.sleep("nap", "1s")
        return loaded.n
    where, _, what = case.partition("-")
    if where == "step":
        return ctx.step.run("s", _produce, what)
    return _produce(what)


@client.create_function(fn_id="probe", trigger=inngest.TriggerEvent(event="bad/probe"))
def probe(ctx: inngest.Context) -> dict:
    """Return the pid of the worker process that ran this run."""
    return {"pid": os.getpid(), "n": ctx.event.data.get("n")}


@client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="bad/wait"), retries=0)
def waiter(ctx: inngest.Context) -> dict:
    """Wait up to an hour for a matching "bad/reply" event and return its data."""
    reply = ctx.step.wait_for_event(
        "reply", event="bad/reply", timeout="1h", if_exp="async.data.ok == true"
    )
    return {"reply": None if reply is None else dict(reply.data)}


@client.create_function(
    fn_id="renamed", trigger=inngest.TriggerEvent(event="bad/renamed"), retries=0
)
def renamed(ctx: inngest.Context) -> dict:
    """Load in a step whose id the second deploy renamed, then sleep for data.nap."""
    version = "b" if SECOND_DEPLOY else "a"
    loaded = ctx.step.run(f"load-{version}", lambda: f"loaded by {version}")
    ctx.logger.info("Renamed step ran: %s", loaded)
    ctx.step.sleep("nap", ctx.event.data.get("nap", "1s"))
    return {"loaded": loaded}


if not SECOND_DEPLOY:

    @client.create_function(
        fn_id="removable", trigger=inngest.TriggerEvent(event="bad/removable"), retries=0
    )
    def removable(ctx: inngest.Context) -> str:
        """Sleep or wait as data.mode says; the second deploy no longer has this function."""
        mode = ctx.event.data.get("mode")
        if mode == "sleep":
            ctx.step.sleep("nap", "1s")
        elif mode == "wait":
            ctx.step.wait_for_event("reply", event="bad/removable.reply", timeout="1h")
        return "done"
