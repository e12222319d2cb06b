"""Functions the encryption-at-rest tests run: each stores the event's marker in a payload."""

from __future__ import annotations

import os

import inngest_django as inngest

from .inngest_functions import LIMITED_ENV

client = inngest.Inngest(app_id="testapp-encryption")


@inngest.create_defer(client, id="enc-deferred")
def enc_deferred(ctx: inngest.Context) -> dict:
    """Echo the deferred payload from a step."""
    secret = ctx.event.data["secret"]
    return {"got": ctx.step.run("echo", lambda: secret)}


@client.create_function(fn_id="enc-child", trigger=inngest.TriggerEvent(event="testapp/enc.child"))
def enc_child(ctx: inngest.Context) -> dict:
    """Return the invoke payload."""
    return {"echo": ctx.event.data["secret"]}


# The keyed limit only where a test's workers ask for it: any function with a concurrency limit
# turns claiming ahead off for every worker of the suite.
_ACCOUNT_LIMIT = (
    [inngest.Concurrency(limit=5, key="event.data.account")]
    if os.environ.get(LIMITED_ENV) == "1"
    else None
)


@client.create_function(
    fn_id="enc-parent",
    trigger=inngest.TriggerEvent(event="testapp/enc.start"),
    concurrency=_ACCOUNT_LIMIT,
)
def enc_parent(ctx: inngest.Context) -> dict:
    """A step, a defer, an invoke and a wait matched on data.account, each carrying the marker."""
    marker = ctx.event.data["marker"]
    loaded = ctx.step.run("load", lambda: {"secret": f"{marker}-step"})
    ctx.defer("later", function=enc_deferred, data={"secret": f"{marker}-defer"})
    child = ctx.step.invoke("child", function=enc_child, data={"secret": f"{marker}-invoke"})
    approval = ctx.step.wait_for_event(
        "approval", event="testapp/enc.approved", match="data.account", timeout="120s"
    )
    return {
        "result": f"{marker}-output",
        "loaded": loaded,
        "child": child,
        "approved_by": approval.data.get("by") if approval else None,
    }


@client.create_function(
    fn_id="enc-debounced",
    trigger=inngest.TriggerEvent(event="testapp/enc.start"),
    debounce=inngest.Debounce(period="1s", key="event.data.account"),
)
def enc_debounced(ctx: inngest.Context) -> dict:
    """Start once per account after a quiet second."""
    return {"account_seen": True}


@client.create_function(
    fn_id="enc-failing", trigger=inngest.TriggerEvent(event="testapp/enc.fail"), retries=0
)
def enc_failing(ctx: inngest.Context) -> None:
    """Fail in a step with the marker in the error message."""
    marker = ctx.event.data["marker"]

    def boom() -> None:
        raise inngest.NonRetriableError(f"{marker}-error")

    ctx.step.run("boom", boom)


@client.create_function(fn_id="enc-echo", trigger=inngest.TriggerEvent(event="testapp/enc.echo"))
def enc_echo(ctx: inngest.Context) -> dict:
    """Return the event data from a step."""
    data = dict(ctx.event.data)
    return {"echo": ctx.step.run("echo", lambda: data)}
