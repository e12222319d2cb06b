"""The admin shows real runs, steps, waits, events and defers, filters them, and cancels runs."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import strip_tags
from pydantic import BaseModel

import inngest_django as inngest
from inngest_django.admin.flow import running_on_key
from inngest_django.enums import WaitKind
from inngest_django.events import dispatch_pending
from inngest_django.models import (
    CronSchedule,
    DeferIntent,
    Event,
    FlowState,
    FunctionRun,
    IdempotencyKey,
    OutboxMessage,
    Wait,
)

pytestmark = pytest.mark.django_db

RUNS_URL = reverse("admin:inngest_django_functionrun_changelist")
EVENTS_URL = reverse("admin:inngest_django_event_changelist")
DEFERS_URL = reverse("admin:inngest_django_deferintent_changelist")
OUTBOX_URL = reverse("admin:inngest_django_outboxmessage_changelist")
FLOW_STATES_URL = reverse("admin:inngest_django_flowstate_changelist")
PACED = ("throttle", "rate_limit")


def run_url(run: FunctionRun) -> str:
    return reverse("admin:inngest_django_functionrun_change", args=[run.pk])


def event_url(event: Event) -> str:
    return reverse("admin:inngest_django_event_change", args=[event.pk])


def defer_url(intent: DeferIntent) -> str:
    return reverse("admin:inngest_django_deferintent_change", args=[intent.pk])


def raw_cells(page: str, field: str) -> list[str]:
    """Return the HTML inside each table cell for `field` (list rows or inline rows), in order."""
    pattern = rf'<(t[dh]) class="field-{field}(?: [^"]*)?">(.*?)</\1>'
    return [cell for _, cell in re.findall(pattern, page, flags=re.S)]


def cells(page: str, field: str) -> list[str]:
    """Return the text of each table cell for `field` (list rows or inline rows), in order."""
    return [" ".join(html.unescape(strip_tags(cell)).split()) for cell in raw_cells(page, field)]


def inline(page: str, related_name: str) -> str:
    """Return the part of a change page that holds one inline's table (e.g. "waits")."""
    start = page.index(f'id="{related_name}-group"')
    end = page.find('-group"', start + len(related_name) + 10)
    return page[start : end if end != -1 else len(page)]


def readonly_value(page: str, field: str) -> str:
    """Return the text shown for a read-only field on a change page."""
    match = re.search(
        rf'<div class="form-row[^"]*\bfield-{field}\b[^"]*">.*?<div class="readonly">(.*?)</div>',
        page,
        flags=re.S,
    )
    assert match, f"no read-only field {field!r} on the page"
    return " ".join(html.unescape(strip_tags(match.group(1))).split())


@pytest.fixture
def runs(client, drain):
    """Return a completed run (its second step retried once), a failed run and a sleeping run."""
    copy_calls = []

    @client.create_function(fn_id="import-images", trigger=inngest.TriggerEvent(event="t/imported"))
    def import_images(ctx):
        urls = ctx.step.run("fetch-urls", lambda: ["a.png", "b.png"])

        def copy():
            copy_calls.append(1)
            if len(copy_calls) == 1:
                raise ValueError("bucket <busy>")
            return {"copied": len(urls)}

        return ctx.step.run("copy-images", copy)

    @client.create_function(fn_id="charge-card", trigger=inngest.TriggerEvent(event="t/ordered"))
    def charge_card(ctx):
        def charge():
            raise inngest.NonRetriableError("card <declined>")

        ctx.step.run("charge", charge)

    @client.create_function(fn_id="send-email", trigger=inngest.TriggerEvent(event="t/signed-up"))
    def send_email(ctx):
        ctx.step.run("send-welcome", lambda: "sent")
        ctx.step.sleep("wait-a-day", "1d")

    client.send(
        [
            inngest.Event(name="t/imported", data={"sku": "<script>alert(1)</script>"}),
            inngest.Event(name="t/ordered", data={"order": 7}, id="order-7"),
            inngest.Event(name="t/signed-up", data={"email": "ada@example.com"}),
        ]
    )
    drain()
    return SimpleNamespace(
        completed=FunctionRun.objects.get(function_id="test-import-images"),
        failed=FunctionRun.objects.get(function_id="test-charge-card"),
        sleeping=FunctionRun.objects.get(function_id="test-send-email"),
    )


def test_fixture_runs_reached_the_expected_states(runs):
    assert runs.completed.status == "COMPLETED", runs.completed.error
    assert runs.failed.status == "FAILED"
    assert runs.sleeping.status == "SLEEPING"


# -- the run list -------------------------------------------------------------------------


def test_run_list_shows_every_run_with_a_coloured_status_badge(admin_client, runs):
    page = admin_client.get(RUNS_URL).content.decode()
    for run in (runs.completed, runs.failed, runs.sleeping):
        assert run_url(run) in page
        assert run.function_id in page
    assert "background: #198754" in page and ">Completed</span>" in page
    assert "background: #dc3545" in page and ">Failed</span>" in page
    assert "background: #6f42c1" in page and ">Sleeping</span>" in page


def test_status_filter_narrows_the_run_list(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"status__exact": "FAILED"}).content.decode()
    assert run_url(runs.failed) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.sleeping) not in page


def test_function_filter_offers_registered_and_stored_slugs(admin_client, runs):
    orphan_event = Event.objects.create(id="01ORPHANEVENT0000000000000", name="t/old", ts=0)
    FunctionRun.objects.create(
        id="01ORPHANRUN000000000000000",
        function_id="retired-function",
        event=orphan_event,
        available_at=timezone.now(),
    )
    page = admin_client.get(RUNS_URL).content.decode()
    # Registered, with runs; registered at startup, without runs; only in the database.
    for slug in ("test-send-email", "testapp-write-orders", "retired-function"):
        assert f"?function={slug}" in page


def test_function_filter_narrows_the_run_list(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"function": "test-send-email"}).content.decode()
    assert run_url(runs.sleeping) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.failed) not in page


def test_search_by_run_id_finds_that_run_only(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"q": runs.failed.pk.lower()}).content.decode()
    assert run_url(runs.failed) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.sleeping) not in page


def test_search_by_event_id_finds_the_runs_it_started(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"q": runs.sleeping.event_id}).content.decode()
    assert run_url(runs.sleeping) in page
    assert run_url(runs.failed) not in page


# -- the run page -------------------------------------------------------------------------


def test_completed_run_page_shows_output_event_and_steps_in_order(admin_client, runs):
    page = admin_client.get(run_url(runs.completed)).content.decode()
    assert event_url(runs.completed.event) in page
    assert "t/imported" in page
    assert "&quot;copied&quot;: 2" in page  # pretty output
    assert cells(page, "step_key") == ["fetch-urls", "copy-images"]
    assert cells(page, "op") == ["Run", "Run"]
    assert cells(page, "status_badge") == ["Completed", "Completed"]
    assert cells(page, "attempts") == ["1", "2"]  # copy-images needed a retry
    assert '"a.png"' in cells(page, "output_or_error")[0]


def test_failed_run_page_shows_error_name_message_and_stack(admin_client, runs):
    page = admin_client.get(run_url(runs.failed)).content.decode()
    assert "<strong>NonRetriableError</strong>: card &lt;declined&gt;" in page
    assert "card <declined>" not in page
    assert "Traceback (most recent call last)" in page
    # The failed step's row in the inline carries the error too, under a Failed badge.
    assert cells(page, "step_key") == ["charge"]
    assert cells(page, "status_badge") == ["Failed"]
    assert cells(page, "output_or_error")[0].startswith("NonRetriableError: card <declined>")


def test_sleeping_run_page_shows_wake_time_and_lease_fields(admin_client, runs):
    page = admin_client.get(run_url(runs.sleeping)).content.decode()
    wait = runs.sleeping.steps.get(step_key="wait-a-day")
    assert wait.wake_at is not None
    assert cells(page, "step_key") == ["send-welcome", "wait-a-day"]
    assert cells(page, "status_badge") == ["Completed", "Sleeping"]
    assert cells(page, "op") == ["Run", "Sleep"]
    assert cells(page, "wake_at")[0] == "-"
    assert cells(page, "wake_at")[1] != "-"
    for label in ("Locked by", "Locked until", "Available at"):
        assert label in page


def test_run_page_links_parent_and_child_runs(admin_client, runs):
    child = FunctionRun.objects.create(
        id="01CHILDRUN0000000000000000",
        function_id="test-child",
        event=runs.completed.event,
        parent_run=runs.completed,
        available_at=timezone.now(),
    )
    parent_page = admin_client.get(run_url(runs.completed)).content.decode()
    assert f'<a href="{run_url(child)}">{child.pk}</a> test-child Queued' in parent_page
    child_page = admin_client.get(run_url(child)).content.decode()
    assert f'<a href="{run_url(runs.completed)}">{runs.completed.pk}</a>' in child_page


# -- defers -------------------------------------------------------------------------------


class Refund(BaseModel):
    charge_id: str
    amount: int


@pytest.fixture
def defers(client, drain):
    """Return an order run that deferred a refund and a cancelled email, then failed, and more.

    Also a run whose defer was rejected by its schema, and the deferred refund run itself.
    """

    @inngest.create_defer(client, id="refund-payment", schema=Refund)
    def refund_payment(ctx):
        return ctx.step.run("issue-refund", lambda: {"refunded": ctx.event.data.amount})

    @inngest.create_defer(client, id="send-receipt")
    def send_receipt(ctx):
        return "sent"

    @client.create_function(fn_id="process-order", trigger=inngest.TriggerEvent(event="t/placed"))
    def process_order(ctx):
        charge = ctx.step.run("charge-card", lambda: "ch_<1>")
        ctx.defer(
            "refund-if-failed",
            function=refund_payment,
            data={"charge_id": charge, "amount": 4200},
        )
        receipt = ctx.defer("receipt", function=send_receipt, data={"to": "ada@example.com"})
        receipt.cancel()

        def ship():
            raise inngest.NonRetriableError("warehouse closed")

        ctx.step.run("create-shipment", ship)

    @client.create_function(fn_id="bad-refund", trigger=inngest.TriggerEvent(event="t/refused"))
    def bad_refund(ctx):
        ctx.defer("refund", function=refund_payment, data={"charge_id": "ch_2", "amount": "lots"})
        return "carried on"

    client.send([inngest.Event(name="t/placed"), inngest.Event(name="t/refused")])
    drain()
    parent = FunctionRun.objects.get(function_id="test-process-order")
    return SimpleNamespace(
        parent=parent,
        refund=parent.defers.get(defer_id="refund-if-failed"),
        receipt=parent.defers.get(defer_id="receipt"),
        refund_run=FunctionRun.objects.get(function_id="test-refund-payment"),
        rejecting=FunctionRun.objects.get(function_id="test-bad-refund"),
    )


def test_fixture_defers_reached_the_expected_states(defers):
    assert defers.parent.status == "FAILED"
    assert defers.refund.status == "SCHEDULED"
    assert defers.receipt.status == "CANCELLED"
    assert defers.refund_run.defer_intent == defers.refund
    assert defers.refund_run.parent_run == defers.parent
    assert defers.refund_run.status == "COMPLETED", defers.refund_run.error
    assert defers.rejecting.status == "COMPLETED"
    assert defers.rejecting.defers.get().status == "REJECTED"


def test_run_page_lists_defers_with_status_payload_and_deferred_run(admin_client, defers):
    page = admin_client.get(run_url(defers.parent)).content.decode()
    assert cells(page, "defer_link") == ["refund-if-failed", "receipt"]
    assert cells(page, "function_id") == ["test-refund-payment", "test-send-receipt"]
    assert cells(page, "status_badge")[-2:] == ["Scheduled", "Cancelled"]
    assert "background: #20c997" in page and ">Scheduled</span>" in page
    assert "background: #8a6d3b" in page and ">Cancelled</span>" in page
    links = raw_cells(page, "defer_link")
    assert f'href="{defer_url(defers.refund)}"' in links[0]
    assert f'href="{defer_url(defers.receipt)}"' in links[1]
    # Pretty, escaped JSON (PostgreSQL's jsonb reorders keys): the charge id has angle brackets.
    payloads = raw_cells(page, "pretty_payload")
    assert "\n  &quot;charge_id&quot;: &quot;ch_&lt;1&gt;&quot;" in payloads[0]
    assert "\n  &quot;amount&quot;: 4200" in payloads[0]
    assert "ch_<1>" not in page
    assert "ada@example.com" in cells(page, "pretty_payload")[1]
    started = raw_cells(page, "deferred_run_link")
    assert f'<a href="{run_url(defers.refund_run)}">{defers.refund_run.pk}</a>' in started[0]
    assert cells(page, "deferred_run_link") == [f"{defers.refund_run.pk} Completed", "-"]
    assert cells(page, "reason") == ["-", "-"]
    assert cells(page, "experiment_variant") == ["-", "-"]


def test_rejected_defer_shows_its_reason(admin_client, defers):
    page = admin_client.get(run_url(defers.rejecting)).content.decode()
    assert cells(page, "defer_link") == ["refund"]
    assert cells(page, "status_badge") == ["Rejected"]
    assert "background: #a61e4d" in page
    [reason] = cells(page, "reason")
    assert reason.startswith("schema validation failed:")
    assert "amount" in reason and "int_parsing" in reason
    assert cells(page, "pretty_payload") == ["-"]
    assert cells(page, "deferred_run_link") == ["-"]


def test_defer_made_with_an_experiment_shows_its_variant(admin_client, client, drain):
    @inngest.create_defer(client, id="follow-up")
    def follow_up(ctx):
        return ctx.parents[0].experiment.variant

    @client.create_function(fn_id="checkout", trigger=inngest.TriggerEvent(event="t/checkout"))
    def checkout(ctx):
        result = ctx.group.experiment(
            "checkout-flow",
            variants={
                "fast": lambda: ctx.step.run("fast-path", lambda: "fast"),
                "safe": lambda: ctx.step.run("safe-path", lambda: "safe"),
            },
            select=inngest.experiment.fixed("fast"),
        )
        ctx.defer("follow-up", function=follow_up, experiment=result.experiment_ref)

    client.send(inngest.Event(name="t/checkout"))
    drain()
    run = FunctionRun.objects.get(function_id="test-checkout")
    page = admin_client.get(run_url(run)).content.decode()
    assert cells(page, "experiment_variant") == ["checkout-flow: fast"]
    assert FunctionRun.objects.get(function_id="test-follow-up").output == "fast"


def test_scheduled_defer_not_relayed_yet_says_so(admin_client, client, drain):
    @inngest.create_defer(client, id="clean-up")
    def clean_up(ctx):
        return None

    @client.create_function(fn_id="deferring", trigger=inngest.TriggerEvent(event="t/deferring"))
    def deferring(ctx):
        ctx.defer("clean-up-later", function=clean_up, data={"bucket": "tmp"})

    client.send(inngest.Event(name="t/deferring"))
    # The run finishes and writes its outbox row, but no worker has relayed it yet.
    with mock.patch("inngest_django.worker.relay_pending", return_value=0):
        drain(timeout=0)
    run = FunctionRun.objects.get(function_id="test-deferring")
    assert run.status == "COMPLETED"
    assert not FunctionRun.objects.filter(function_id="test-clean-up").exists()
    page = admin_client.get(run_url(run)).content.decode()
    assert cells(page, "status_badge")[-1] == "Scheduled"
    assert cells(page, "deferred_run_link") == ["not started yet"]
    outbox = admin_client.get(OUTBOX_URL, {"relayed": "no"}).content.decode()
    assert cells(outbox, "defer_link") == ["clean-up-later → test-clean-up"]
    assert cells(outbox, "deferred_run_link") == ["not started yet"]

    drain()
    deferred = FunctionRun.objects.get(function_id="test-clean-up")
    page = admin_client.get(run_url(run)).content.decode()
    assert cells(page, "deferred_run_link") == [f"{deferred.pk} Completed"]
    outbox = admin_client.get(OUTBOX_URL, {"relayed": "no"}).content.decode()
    assert cells(outbox, "defer_link") == []


def test_deferred_run_page_says_which_defer_of_which_parent_started_it(admin_client, defers):
    page = admin_client.get(run_url(defers.refund_run)).content.decode()
    started_by = readonly_value(page, "started_by")
    assert started_by == f"defer refund-if-failed of {defers.parent.pk}"
    assert f'<a href="{run_url(defers.parent)}">{defers.parent.pk}</a>' in page
    assert f'href="{defer_url(defers.refund)}"' in page
    assert readonly_value(page, "parent_run_link") == defers.parent.pk
    # The parent lists the deferred run among its child runs, too.
    parent_page = admin_client.get(run_url(defers.parent)).content.decode()
    assert readonly_value(parent_page, "child_runs") == (
        f"{defers.refund_run.pk} test-refund-payment Completed (defer refund-if-failed)"
    )


def test_run_page_of_an_event_run_says_which_event_started_it(admin_client, defers):
    page = admin_client.get(run_url(defers.parent)).content.decode()
    assert readonly_value(page, "started_by") == "event t/placed"


def test_started_by_filter_narrows_the_run_list_to_deferred_runs(admin_client, defers):
    page = admin_client.get(RUNS_URL).content.decode()
    assert "?started_by=defer" in page
    assert "?started_by=event" in page

    deferred = admin_client.get(RUNS_URL, {"started_by": "defer"}).content.decode()
    assert run_url(defers.refund_run) in deferred
    assert run_url(defers.parent) in deferred  # linked as the parent, not listed as a row
    assert cells(deferred, "function_id") == ["test-refund-payment"]
    assert cells(deferred, "started_by") == [f"defer refund-if-failed of {defers.parent.pk}"]

    by_event = admin_client.get(RUNS_URL, {"started_by": "event"}).content.decode()
    assert sorted(cells(by_event, "function_id")) == ["test-bad-refund", "test-process-order"]
    assert sorted(cells(by_event, "started_by")) == ["event t/placed", "event t/refused"]


def test_run_list_marks_deferred_runs_with_their_defer_and_parent(admin_client, defers):
    page = admin_client.get(RUNS_URL).content.decode()
    rows = dict(zip(cells(page, "function_id"), raw_cells(page, "started_by"), strict=True))
    marker = rows["test-refund-payment"]
    assert f'<a href="{defer_url(defers.refund)}">refund-if-failed</a>' in marker
    assert f'<a href="{run_url(defers.parent)}">{defers.parent.pk}</a>' in marker
    assert strip_tags(rows["test-process-order"]) == "event t/placed"


def page_queries(admin_client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(url, params or {}).status_code == 200
    return len(queries)


def test_defer_pages_make_no_query_per_defer(admin_client, client, drain, defers):
    @inngest.create_defer(client, id="ping")
    def ping(ctx):
        return None

    @client.create_function(fn_id="fan-out", trigger=inngest.TriggerEvent(event="t/fan-out"))
    def fan_out(ctx):
        for index in range(6):
            handle = ctx.defer(f"ping-{index}", function=ping, data={"index": index})
            if index % 2:
                handle.cancel()

    client.send(inngest.Event(name="t/fan-out"))
    drain()
    many = FunctionRun.objects.get(function_id="test-fan-out")
    assert many.defers.filter(deferred_run__isnull=False).count() == 3
    # Same page, six defers (three runs) against two defers (one run): the same queries.
    assert page_queries(admin_client, run_url(many)) == page_queries(
        admin_client, run_url(defers.parent)
    )

    one_deferred = page_queries(admin_client, RUNS_URL, {"function": "test-refund-payment"})
    assert page_queries(admin_client, RUNS_URL, {"function": "test-ping"}) == one_deferred
    assert page_queries(admin_client, RUNS_URL, {"started_by": "defer"}) == one_deferred

    few = page_queries(admin_client, DEFERS_URL, {"target": "test-refund-payment"})
    assert page_queries(admin_client, DEFERS_URL, {"target": "test-ping"}) == few
    one_row = page_queries(admin_client, OUTBOX_URL, {"q": defers.parent.pk})
    assert page_queries(admin_client, OUTBOX_URL, {"q": many.pk}) == one_row


# -- the defer and outbox lists -------------------------------------------------------------


def test_defer_list_shows_run_target_status_and_filters(admin_client, defers):
    page = admin_client.get(DEFERS_URL).content.decode()
    rejected = defers.rejecting.defers.get()
    rows = {
        run_and_defer: (target, status, started)
        for run_and_defer, target, status, started in zip(
            zip(cells(page, "run_link"), cells(page, "defer_id"), strict=True),
            cells(page, "function_id"),
            cells(page, "status_badge"),
            cells(page, "deferred_run_link"),
            strict=True,
        )
    }
    assert rows == {
        (defers.parent.pk, "refund-if-failed"): (
            "test-refund-payment",
            "Scheduled",
            f"{defers.refund_run.pk} Completed",
        ),
        (defers.parent.pk, "receipt"): ("test-send-receipt", "Cancelled", "-"),
        (defers.rejecting.pk, "refund"): ("test-refund-payment", "Rejected", "-"),
    }
    assert f'<a href="{run_url(defers.rejecting)}">{defers.rejecting.pk}</a>' in page
    assert f'<a href="{run_url(defers.parent)}">{defers.parent.pk}</a>' in page
    assert f'<a href="{run_url(defers.refund_run)}">{defers.refund_run.pk}</a>' in page
    for intent in (defers.refund, defers.receipt, rejected):
        assert f'href="{defer_url(intent)}"' in page
    assert "?status__exact=REJECTED" in page and "?target=test-send-receipt" in page

    rejected_page = admin_client.get(DEFERS_URL, {"status__exact": "REJECTED"}).content.decode()
    assert cells(rejected_page, "run_link") == [defers.rejecting.pk]
    receipts = admin_client.get(DEFERS_URL, {"target": "test-send-receipt"}).content.decode()
    assert cells(receipts, "status_badge") == ["Cancelled"]


def test_defer_search_finds_by_defer_id_or_run_id(admin_client, defers):
    by_defer = admin_client.get(DEFERS_URL, {"q": "refund-if-failed"}).content.decode()
    assert cells(by_defer, "run_link") == [defers.parent.pk]
    by_run = admin_client.get(DEFERS_URL, {"q": defers.parent.pk.lower()}).content.decode()
    assert sorted(cells(by_run, "defer_id")) == ["receipt", "refund-if-failed"]


def test_defer_page_shows_reason_payload_and_outbox(admin_client, defers):
    rejected = defers.rejecting.defers.get()
    page = admin_client.get(defer_url(rejected)).content.decode()
    assert readonly_value(page, "reason").startswith("schema validation failed:")
    assert readonly_value(page, "run_link") == defers.rejecting.pk
    assert readonly_value(page, "outbox_state") == "-"

    page = admin_client.get(defer_url(defers.refund)).content.decode()
    assert "&quot;amount&quot;: 4200" in page
    assert readonly_value(page, "deferred_run_link") == f"{defers.refund_run.pk} Completed"
    outbox = OutboxMessage.objects.get(intent=defers.refund)
    outbox_url = reverse("admin:inngest_django_outboxmessage_change", args=[outbox.pk])
    assert f'<a href="{outbox_url}">relayed</a>' in page


def test_outbox_list_shows_each_row_its_run_and_relay_state(admin_client, defers):
    page = admin_client.get(OUTBOX_URL).content.decode()
    assert cells(page, "defer_link") == ["refund-if-failed → test-refund-payment"]
    assert f'href="{defer_url(defers.refund)}"' in page
    assert cells(page, "run_link") == [defers.parent.pk]
    assert f'<a href="{run_url(defers.parent)}">' in page
    assert cells(page, "relayed_at") != ["-"]
    assert cells(page, "deferred_run_link") == [f"{defers.refund_run.pk} Completed"]
    assert "?relayed=no" in page
    assert cells(admin_client.get(OUTBOX_URL, {"relayed": "no"}).content.decode(), "run_link") == []
    relayed = admin_client.get(OUTBOX_URL, {"relayed": "yes"}).content.decode()
    assert cells(relayed, "run_link") == [defers.parent.pk]
    found = admin_client.get(OUTBOX_URL, {"q": defers.parent.pk.lower()}).content.decode()
    assert cells(found, "run_link") == [defers.parent.pk]
    found = admin_client.get(OUTBOX_URL, {"q": "refund-if-failed"}).content.decode()
    assert cells(found, "run_link") == [defers.parent.pk]
    assert cells(admin_client.get(OUTBOX_URL, {"q": "receipt"}).content.decode(), "id") == []


# -- waits ------------------------------------------------------------------------------


def until_text(moment) -> str:
    """Return a datetime as the admin prints it (the test settings' time zone, localized)."""
    return formats.localize(timezone.template_localtime(moment))


def status_notes(page: str) -> dict[str, str]:
    """Return the run list's status cell text by run id."""
    return dict(zip(cells(page, "id"), cells(page, "status_badge"), strict=True))


@pytest.fixture
def waiting(client, drain):
    """Return onboarding runs: one waits for activation, one got it and waits for an order.

    Both also listen for a cancel rule's event, matched on the user id.
    """

    @client.create_function(
        fn_id="onboard",
        trigger=inngest.TriggerEvent(event="app/user.signed-up"),
        cancel=[
            inngest.Cancel(
                event="app/user.deleted", if_exp="event.data.user_id == async.data.user_id"
            )
        ],
    )
    def onboard(ctx):
        activated = ctx.step.wait_for_event(
            "wait-activation", event="app/user.activated", timeout="1h", match="data.user_id"
        )
        if activated is None:
            return "never activated"
        ctx.step.wait_for_event(
            "wait-big-order",
            event="shop/order.placed",
            timeout="7d",
            if_exp="async.data.user_id == event.data.user_id && async.data.total > 100",
        )
        return "onboarded"

    client.send(
        [
            inngest.Event(name="app/user.signed-up", data={"user_id": 1}),
            inngest.Event(name="app/user.signed-up", data={"user_id": 2}),
        ]
    )
    drain()
    client.send(inngest.Event(name="app/user.activated", data={"user_id": 2}))
    drain()
    by_user = {
        run.event.data["user_id"]: run
        for run in FunctionRun.objects.filter(function_id="test-onboard")
    }
    return SimpleNamespace(
        inactive=by_user[1],
        active=by_user[2],
        activation=Event.objects.get(name="app/user.activated"),
    )


def test_fixture_waiting_runs_reached_the_expected_states(waiting):
    assert waiting.inactive.status == "WAITING"
    assert waiting.active.status == "WAITING"
    assert waiting.active.waits.get(step_key="wait-activation").event == waiting.activation


def test_waiting_run_page_shows_what_it_waits_for_and_until_when(admin_client, waiting):
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    assert cells(page, "kind") == ["Cancel rule", "Wait for event"]
    assert cells(inline(page, "waits"), "step_key") == ["-", "wait-activation"]
    assert cells(page, "event_name") == ["app/user.deleted", "app/user.activated"]
    assert cells(page, "match") == [
        "data.user_id = 1 if event.data.user_id == async.data.user_id",
        "data.user_id = 1",
    ]
    activation = waiting.inactive.waits.get(step_key="wait-activation")
    assert cells(page, "expires_at") == ["-", until_text(activation.expires_at)]
    assert cells(page, "resolved_at") == ["-", "-"]
    assert cells(page, "outcome_badge") == ["Pending", "Pending"]
    assert cells(page, "event_link") == ["-", "-"]
    assert cells(page, "child_run_link") == ["-", "-"]
    # The steps inline shows the same wait as a step that wakes at the timeout.
    assert cells(page, "op") == ["Wait for event"]
    assert cells(page, "wake_at") == [until_text(activation.expires_at)]


def test_resolved_wait_shows_its_outcome_and_the_event_it_matched(admin_client, waiting):
    page = admin_client.get(run_url(waiting.active)).content.decode()
    # Pending waits first, then the resolved one.
    assert cells(inline(page, "waits"), "step_key") == ["-", "wait-big-order", "wait-activation"]
    assert cells(page, "outcome_badge") == ["Pending", "Pending", "Event arrived"]
    assert cells(page, "resolved_at")[:2] == ["-", "-"]
    assert cells(page, "resolved_at")[2] != "-"
    assert cells(page, "match")[1] == (
        "if async.data.user_id == event.data.user_id && async.data.total > 100"
    )
    assert "&amp;&amp;" in raw_cells(page, "match")[1]
    assert cells(page, "event_link") == ["-", "-", waiting.activation.pk]
    assert f'<a href="{event_url(waiting.activation)}">' in raw_cells(page, "event_link")[2]


def test_run_list_notes_what_waiting_runs_wait_for(admin_client, runs, waiting):
    page = admin_client.get(RUNS_URL).content.decode()
    notes = status_notes(page)
    activation = waiting.inactive.waits.get(step_key="wait-activation")
    big_order = waiting.active.waits.get(step_key="wait-big-order")
    assert notes[waiting.inactive.pk] == (
        f"Waiting waiting for app/user.activated until {until_text(activation.expires_at)}"
    )
    assert notes[waiting.active.pk] == (
        f"Waiting waiting for shop/order.placed until {until_text(big_order.expires_at)}"
    )
    # Runs that do not wait get the badge alone.
    assert notes[runs.sleeping.pk] == "Sleeping"
    assert notes[runs.completed.pk] == "Completed"


def test_run_list_names_a_few_of_many_waits_then_counts_the_rest(admin_client, waiting):
    activation = waiting.inactive.waits.get(step_key="wait-activation")
    Wait.objects.bulk_create(
        Wait(
            run=waiting.inactive,
            kind=WaitKind.EVENT,
            step_key=f"extra-{n}",
            event_name=f"app/extra-{n}",
            expires_at=activation.expires_at,
        )
        for n in range(3)
    )
    page = admin_client.get(RUNS_URL).content.decode()
    until = until_text(activation.expires_at)
    assert status_notes(page)[waiting.inactive.pk] == (
        f"Waiting waiting for app/user.activated until {until} "
        f"waiting for app/extra-0 until {until} waiting for app/extra-1 until {until} "
        "and 1 more"
    )


def test_wait_on_a_field_the_trigger_lacks_says_it_matches_nothing(admin_client, drain, waiting):
    inngest.send(inngest.Event(name="app/user.signed-up", data={"email": "no-id@example.com"}))
    drain()
    run = FunctionRun.objects.get(
        function_id="test-onboard", event__data__email="no-id@example.com"
    )
    page = admin_client.get(run_url(run)).content.decode()
    assert cells(page, "match") == [
        "data.user_id is missing from the trigger event: nothing matches "
        "if event.data.user_id == async.data.user_id",
        "data.user_id is missing from the trigger event: nothing matches",
    ]


def test_waiting_notes_make_no_query_per_run(admin_client, client, drain, waiting):
    two = page_queries(admin_client, RUNS_URL, {"status__exact": "WAITING"})
    client.send([inngest.Event(name="app/user.signed-up", data={"user_id": n}) for n in (3, 4, 5)])
    drain()
    page = admin_client.get(RUNS_URL, {"status__exact": "WAITING"}).content.decode()
    assert len(cells(page, "id")) == 5
    assert page_queries(admin_client, RUNS_URL, {"status__exact": "WAITING"}) == two


def test_cancelled_run_page_shows_the_cancel_reason(admin_client, client, drain, waiting):
    client.send(inngest.Event(name="app/user.deleted", data={"user_id": 1}))
    drain()
    waiting.inactive.refresh_from_db()
    assert waiting.inactive.status == "CANCELLED"
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    assert "<h2" in page and ">Cancellation</h2>" in page
    reason = readonly_value(page, "cancel_reason_text")
    assert reason.startswith("cancel rule: event app/user.deleted (")
    assert readonly_value(page, "cancel_requested_at") == until_text(
        waiting.inactive.cancel_requested_at
    )
    # Every wait ended with the run: the rule's own by its event, the other as run ended.
    assert cells(page, "outcome_badge") == ["Event arrived", "Run ended first"]
    # Runs never cancelled show no such section.
    assert ">Cancellation</h2>" not in admin_client.get(run_url(waiting.active)).content.decode()


# -- invoke -----------------------------------------------------------------------------


@pytest.fixture
def invokes(client, drain):
    """Return a caller waiting on a sleeping invoked run, and a caller whose invoke finished."""

    @client.create_function(fn_id="slow-child", trigger=inngest.TriggerEvent(event="t/unused"))
    def slow_child(ctx):
        ctx.step.sleep("nap", "1h")

    @client.create_function(fn_id="quick-child", trigger=inngest.TriggerEvent(event="t/unused2"))
    def quick_child(ctx):
        return ctx.event.data["n"] * 2

    @client.create_function(fn_id="call-slow", trigger=inngest.TriggerEvent(event="t/call-slow"))
    def call_slow(ctx):
        return ctx.step.invoke("call-child", function=slow_child, data={"n": 1})

    @client.create_function(fn_id="call-quick", trigger=inngest.TriggerEvent(event="t/call-quick"))
    def call_quick(ctx):
        return ctx.step.invoke("double-it", function=quick_child, data={"n": 21})

    client.send([inngest.Event(name="t/call-slow"), inngest.Event(name="t/call-quick")])
    drain()
    return SimpleNamespace(
        waiting=FunctionRun.objects.get(function_id="test-call-slow"),
        slow=FunctionRun.objects.get(function_id="test-slow-child"),
        finished=FunctionRun.objects.get(function_id="test-call-quick"),
        quick=FunctionRun.objects.get(function_id="test-quick-child"),
    )


def test_fixture_invokes_reached_the_expected_states(invokes):
    assert (invokes.waiting.status, invokes.slow.status) == ("WAITING", "SLEEPING")
    assert (invokes.finished.status, invokes.finished.output) == ("COMPLETED", 42)
    assert invokes.slow.parent_run == invokes.waiting
    assert invokes.slow.event.name == "inngest/function.invoked"


def test_caller_page_links_the_run_it_invoked(admin_client, invokes):
    page = admin_client.get(run_url(invokes.waiting)).content.decode()
    assert cells(page, "kind") == ["Invoked run"]
    assert cells(inline(page, "waits"), "step_key") == ["call-child"]
    assert cells(page, "event_name") == ["-"]
    assert cells(page, "outcome_badge") == ["Pending"]
    assert cells(page, "child_run_link") == [f"{invokes.slow.pk} test-slow-child Sleeping"]
    link = f'<a href="{run_url(invokes.slow)}">{invokes.slow.pk}</a>'
    assert link in raw_cells(page, "child_run_link")[0]
    assert readonly_value(page, "child_runs") == (
        f"{invokes.slow.pk} test-slow-child Sleeping (invoked at step call-child)"
    )
    assert (
        readonly_value(page, "status_badge") == f"Waiting waiting for invoked run {invokes.slow.pk}"
    )


def test_finished_invoke_shows_its_outcome(admin_client, invokes):
    page = admin_client.get(run_url(invokes.finished)).content.decode()
    assert cells(page, "outcome_badge") == ["Invoked run finished"]
    assert cells(page, "child_run_link") == [f"{invokes.quick.pk} test-quick-child Completed"]
    assert cells(page, "op") == ["Invoke"]
    assert cells(page, "output_or_error") == ["42"]


def test_invoked_run_page_says_which_run_invoked_it_at_which_step(admin_client, invokes):
    page = admin_client.get(run_url(invokes.slow)).content.decode()
    assert (
        readonly_value(page, "started_by") == f"invoked by {invokes.waiting.pk} at step call-child"
    )
    link = f'<a href="{run_url(invokes.waiting)}">{invokes.waiting.pk}</a>'
    assert link in page
    assert readonly_value(page, "parent_run_link") == invokes.waiting.pk


def test_run_list_notes_the_invoked_run_a_caller_waits_for(admin_client, invokes):
    page = admin_client.get(RUNS_URL).content.decode()
    assert status_notes(page)[invokes.waiting.pk] == (
        f"Waiting waiting for invoked run {invokes.slow.pk}"
    )
    rows = dict(zip(cells(page, "id"), raw_cells(page, "status_badge"), strict=True))
    assert f'<a href="{run_url(invokes.slow)}">' in rows[invokes.waiting.pk]
    started_by = dict(zip(cells(page, "id"), cells(page, "started_by"), strict=True))
    assert started_by[invokes.slow.pk] == f"invoked by {invokes.waiting.pk} at step call-child"
    assert started_by[invokes.quick.pk] == f"invoked by {invokes.finished.pk} at step double-it"
    assert started_by[invokes.waiting.pk] == "event t/call-slow"


def test_started_by_filter_offers_invoke(admin_client, invokes):
    page = admin_client.get(RUNS_URL).content.decode()
    assert "?started_by=invoke" in page
    invoked = admin_client.get(RUNS_URL, {"started_by": "invoke"}).content.decode()
    assert sorted(cells(invoked, "function_id")) == ["test-quick-child", "test-slow-child"]
    by_event = admin_client.get(RUNS_URL, {"started_by": "event"}).content.decode()
    assert sorted(cells(by_event, "function_id")) == ["test-call-quick", "test-call-slow"]


def test_invoke_columns_make_no_query_per_run(admin_client, client, drain, invokes):
    one = page_queries(admin_client, RUNS_URL, {"started_by": "invoke"})
    client.send([inngest.Event(name="t/call-slow") for _ in range(3)])
    drain()
    many = admin_client.get(RUNS_URL, {"started_by": "invoke"}).content.decode()
    assert len(cells(many, "id")) == 5
    assert page_queries(admin_client, RUNS_URL, {"started_by": "invoke"}) == one
    assert page_queries(admin_client, RUNS_URL, {"status__exact": "WAITING"}) == one


# -- cancelling -------------------------------------------------------------------------


def cancel_url(run: FunctionRun) -> str:
    return reverse("admin:inngest_django_functionrun_cancel", args=[run.pk])


def shown_messages(page: str) -> list[tuple[str, str]]:
    """Return the (level, text) of each message the admin shows on a page."""
    found = re.search(r'<ul class="messagelist">(.*?)</ul>', page, flags=re.S)
    if not found:
        return []
    items = re.findall(r'<li class="([^"]*)">(.*?)</li>', found.group(1), flags=re.S)
    return [(level, html.unescape(strip_tags(text)).strip()) for level, text in items]


def staff_client(django_user_model, username: str, *codenames: str) -> Client:
    """Return a client logged in as a staff user with these inngest_django permissions."""
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="inngest_django", codename__in=codenames)
    )
    logged_in = Client()
    logged_in.force_login(user)
    return logged_in


def test_cancel_permission_exists_with_its_name():
    permission = Permission.objects.get(codename="cancel_functionrun")
    assert permission.name == "Can cancel function runs"
    assert permission.content_type.model_class() is FunctionRun


def test_cancel_action_asks_sleeping_runs_to_stop_and_skips_finished_ones(
    admin_client, admin_user, runs, drain
):
    page = admin_client.get(RUNS_URL).content.decode()
    assert '<option value="cancel_runs">Cancel selected runs</option>' in page
    response = admin_client.post(
        RUNS_URL,
        {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk, runs.completed.pk]},
        follow=True,
    )
    assert shown_messages(response.content.decode()) == [
        ("success", "1 run was asked to stop; a worker cancels it at its next step."),
        ("warning", "1 run had already finished."),
    ]
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.status == "SLEEPING" and runs.sleeping.cancel_requested_at is not None
    # Until a worker gets to it, the list says it was asked, and its page offers no button.
    assert status_notes(response.content.decode())[runs.sleeping.pk] == "Sleeping asked to stop"
    page = admin_client.get(run_url(runs.sleeping)).content.decode()
    assert cancel_url(runs.sleeping) not in page
    assert readonly_value(page, "cancel_reason_text") == "admin: cancelled by admin"
    # Who asked is in the run's admin history.
    entry = LogEntry.objects.get(object_id=runs.sleeping.pk)
    assert entry.user == admin_user and entry.get_change_message() == "Asked the run to stop."

    again = admin_client.post(
        RUNS_URL, {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk]}, follow=True
    )
    assert shown_messages(again.content.decode()) == [
        ("warning", "1 run had already been asked to stop.")
    ]

    drain()
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.status == "CANCELLED"
    page = admin_client.get(run_url(runs.sleeping)).content.decode()
    assert readonly_value(page, "status_badge") == "Cancelled"
    assert readonly_value(page, "cancel_requested_at") == until_text(
        runs.sleeping.cancel_requested_at
    )
    assert Event.objects.filter(name="inngest/function.cancelled").count() == 1


def test_cancel_action_reports_several_runs_in_the_plural(admin_client, client, drain, waiting):
    response = admin_client.post(
        RUNS_URL,
        {"action": "cancel_runs", "_selected_action": [waiting.inactive.pk, waiting.active.pk]},
        follow=True,
    )
    assert shown_messages(response.content.decode()) == [
        ("success", "2 runs were asked to stop; workers cancel them at their next step.")
    ]
    drain()
    statuses = FunctionRun.objects.filter(function_id="test-onboard").values_list(
        "status", flat=True
    )
    assert list(statuses) == ["CANCELLED", "CANCELLED"]


def test_cancel_button_asks_the_run_to_stop(admin_client, waiting, drain):
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    action = re.escape(cancel_url(waiting.inactive))
    form = re.search(
        rf'<form class="cancel-run run-tool" method="post" action="{action}">(.*?)</form>',
        page,
        flags=re.S,
    )
    assert form and 'name="csrfmiddlewaretoken"' in form.group(1)
    assert ">Cancel run</button>" in form.group(1)

    response = admin_client.post(cancel_url(waiting.inactive))
    assert response.status_code == 302 and response.url == run_url(waiting.inactive)
    page = admin_client.get(response.url).content.decode()
    assert shown_messages(page) == [
        ("success", "1 run was asked to stop; a worker cancels it at its next step.")
    ]
    assert cancel_url(waiting.inactive) not in page
    assert readonly_value(page, "status_badge").endswith("asked to stop")
    drain()
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    assert readonly_value(page, "status_badge") == "Cancelled"
    assert cells(page, "outcome_badge") == ["Run ended first", "Run ended first"]


def test_cancel_button_needs_a_post_with_a_csrf_token(admin_user, waiting):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    page = browser.get(run_url(waiting.inactive)).content.decode()
    assert browser.get(cancel_url(waiting.inactive)).status_code == 405
    assert browser.post(cancel_url(waiting.inactive)).status_code == 403
    waiting.inactive.refresh_from_db()
    assert waiting.inactive.cancel_requested_at is None

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post(cancel_url(waiting.inactive), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    waiting.inactive.refresh_from_db()
    assert waiting.inactive.cancel_requested_at is not None


def test_finished_run_page_offers_no_cancel_button(admin_client, runs):
    page = admin_client.get(run_url(runs.completed)).content.decode()
    assert cancel_url(runs.completed) not in page and "Cancel run" not in page
    response = admin_client.post(cancel_url(runs.completed), follow=True)
    assert shown_messages(response.content.decode()) == [("warning", "1 run had already finished.")]
    missing = reverse("admin:inngest_django_functionrun_cancel", args=["01NOSUCHRUN"])
    assert admin_client.post(missing).status_code == 404


def test_without_the_permission_there_is_no_action_no_button_and_a_403(django_user_model, runs):
    viewer = staff_client(
        django_user_model, "viewer", "view_functionrun", "view_steprun", "view_wait"
    )
    page = viewer.get(RUNS_URL).content.decode()
    assert run_url(runs.sleeping) in page
    assert "cancel_runs" not in page and "action-checkbox" not in page
    page = viewer.get(run_url(runs.sleeping)).content.decode()
    assert cancel_url(runs.sleeping) not in page and "Cancel run" not in page
    assert viewer.post(cancel_url(runs.sleeping)).status_code == 403
    viewer.post(RUNS_URL, {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk]})
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.cancel_requested_at is None


def test_the_cancel_permission_alone_lets_staff_cancel(django_user_model, runs, drain):
    operator = staff_client(django_user_model, "operator", "view_functionrun", "cancel_functionrun")
    page = operator.get(run_url(runs.sleeping)).content.decode()
    assert f'action="{cancel_url(runs.sleeping)}"' in page
    assert "cancel_runs" in operator.get(RUNS_URL).content.decode()
    response = operator.post(
        RUNS_URL, {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk]}, follow=True
    )
    assert shown_messages(response.content.decode())[0][0] == "success"
    drain()
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.status == "CANCELLED"
    assert runs.sleeping.cancel_reason == "admin: cancelled by operator"


# -- events -------------------------------------------------------------------------------


def test_event_list_shows_names_producer_ids_and_run_counts(admin_client, runs):
    page = admin_client.get(EVENTS_URL).content.decode()
    assert "t/ordered" in page and "order-7" in page
    assert "inngest/function.failed" in page
    names, counts = cells(page, "id"), cells(page, "run_count")
    assert dict(zip(names, counts, strict=True))[runs.failed.event_id] == "1"


def test_event_filters_by_name_prefix_and_dispatch(admin_client, runs):
    inngest.send(inngest.Event(name="later/queued"))
    page = admin_client.get(EVENTS_URL).content.decode()
    assert "?name_prefix=inngest%2F" in page and "?name_prefix=t%2F" in page
    engine_only = admin_client.get(EVENTS_URL, {"name_prefix": "inngest/"}).content.decode()
    assert "inngest/function.finished" in engine_only
    assert "t/ordered" not in engine_only
    waiting = admin_client.get(EVENTS_URL, {"dispatched": "no"}).content.decode()
    assert "later/queued" in waiting
    assert "t/ordered" not in waiting


def test_event_search_finds_producer_id(admin_client, runs):
    page = admin_client.get(EVENTS_URL, {"q": "order-7"}).content.decode()
    assert event_url(runs.failed.event) in page
    assert event_url(runs.completed.event) not in page


def test_event_page_escapes_data_and_lists_the_runs_it_started(admin_client, runs):
    page = admin_client.get(event_url(runs.completed.event)).content.decode()
    assert html.escape('"sku": "<script>alert(1)</script>"') in page
    assert "<script>alert(1)" not in page
    assert run_url(runs.completed) in page
    assert "test-import-images" in page and ">Completed</span>" in page


# -- flow control ---------------------------------------------------------------------------


@pytest.fixture
def flow(client, drain):
    """Return runs flow control skipped, delayed, debounced or keyed, and one it left alone.

    One per-user run is claimed by a worker and holds its concurrency key, so another run of
    that user waits for a slot while a run of another user does not.
    """

    @client.create_function(
        fn_id="limited",
        trigger=inngest.TriggerEvent(event="t/limited"),
        rate_limit=inngest.RateLimit(limit=1, period="1h"),
    )
    def limited(ctx):
        return "ran"

    @client.create_function(
        fn_id="paced",
        trigger=inngest.TriggerEvent(event="t/paced"),
        throttle=inngest.Throttle(limit=1, period="1h"),
    )
    def paced(ctx):
        return "ran"

    @client.create_function(
        fn_id="settle",
        trigger=inngest.TriggerEvent(event="t/settle"),
        debounce=inngest.Debounce(period="1h", key="event.data.doc", timeout="2h"),
    )
    def settle(ctx):
        return ctx.event.data["rev"]

    @client.create_function(
        fn_id="single",
        trigger=inngest.TriggerEvent(event="t/single"),
        singleton=inngest.Singleton(mode="skip"),
    )
    def single(ctx):
        ctx.step.sleep("nap", "1h")

    @client.create_function(
        fn_id="per-user",
        trigger=inngest.TriggerEvent(event="t/per-user"),
        concurrency=[
            inngest.Concurrency(limit=1, key="event.data.user"),
            inngest.Concurrency(limit=5, key='"exports"', scope="env"),
        ],
    )
    def per_user(ctx):
        return None

    @client.create_function(
        fn_id="collect",
        trigger=inngest.TriggerEvent(event="t/collect"),
        batch_events=inngest.Batch(max_size=3, timeout="1h"),
    )
    def collect(ctx):
        return len(ctx.events)

    client.send(
        [
            *(inngest.Event(name="t/collect") for _ in range(2)),
            *(inngest.Event(name="t/limited") for _ in range(2)),
            *(inngest.Event(name="t/paced") for _ in range(2)),
            *(inngest.Event(name="t/settle", data={"doc": "a", "rev": n}) for n in range(2)),
            *(inngest.Event(name="t/single") for _ in range(2)),
        ]
    )
    drain()
    # Dispatched, then one run claimed by a worker that holds it: no drain, which would run all.
    client.send([inngest.Event(name="t/per-user", data={"user": u}) for u in "aab"])
    dispatch_pending()
    now = timezone.now()
    with transaction.atomic():
        FunctionRun.objects.claim_limited(
            worker_id="busy-worker",
            lease_token="busy",
            limit=1,
            now=now,
            lease_until=now + timedelta(minutes=5),
        )

    def runs_of(function_id: str) -> list[FunctionRun]:
        return list(FunctionRun.objects.filter(function_id=function_id).order_by("created_at"))

    limited_runs, paced_runs = runs_of("test-limited"), runs_of("test-paced")
    single_runs, per_user_runs = runs_of("test-single"), runs_of("test-per-user")
    return SimpleNamespace(
        untouched=limited_runs[0],
        rate_limited=limited_runs[1],
        started=paced_runs[0],
        throttled=paced_runs[1],
        debounced=FunctionRun.objects.get(function_id="test-settle"),
        batched=FunctionRun.objects.get(function_id="test-collect"),
        singleton=single_runs[0],
        singleton_skipped=single_runs[1],
        holding_slot=per_user_runs[0],
        waiting_for_slot=per_user_runs[1],
        other_user=per_user_runs[2],
    )


def test_fixture_flow_runs_reached_the_expected_states(flow):
    assert (flow.untouched.status, flow.rate_limited.status) == ("COMPLETED", "SKIPPED")
    assert (flow.started.status, flow.throttled.status) == ("COMPLETED", "QUEUED")
    assert flow.debounced.status == "QUEUED"
    assert (flow.batched.status, flow.batched.batch_size) == ("QUEUED", 2)
    assert flow.debounced.event.data["rev"] == 1
    assert (flow.singleton.status, flow.singleton_skipped.status) == ("SLEEPING", "SKIPPED")
    assert flow.holding_slot.status == "RUNNING"
    assert flow.holding_slot.event.data["user"] == "a"
    assert flow.waiting_for_slot.status == "QUEUED"
    assert flow.waiting_for_slot.event.data["user"] == "a"
    assert flow.other_user.status == "QUEUED"
    assert flow.other_user.event.data["user"] == "b"


def test_run_list_notes_why_flow_control_skipped_or_delayed_a_run(admin_client, flow):
    notes = status_notes(admin_client.get(RUNS_URL).content.decode())
    assert notes[flow.rate_limited.pk] == "Skipped rate limit: over 1 per 1:00:00"
    assert notes[flow.singleton_skipped.pk] == (
        f"Skipped singleton: run {flow.singleton.pk} is active"
    )
    assert notes[flow.throttled.pk] == f"Queued {flow.throttled.flow_note}"
    assert flow.throttled.flow_note.startswith("throttled until ")
    assert notes[flow.debounced.pk] == "Queued debounced for 1:00:00"
    # Runs flow control let through unchanged get the badge alone.
    assert notes[flow.untouched.pk] == "Completed"
    assert notes[flow.waiting_for_slot.pk] == "Queued"


def test_flow_control_filter_splits_skipped_from_delayed_runs(admin_client, flow):
    page = admin_client.get(RUNS_URL).content.decode()
    assert "?flow=skipped" in page and "?flow=delayed" in page
    assert "Skipped by flow control" in page and "Delayed by flow control" in page
    skipped = admin_client.get(RUNS_URL, {"flow": "skipped"}).content.decode()
    assert set(cells(skipped, "id")) == {flow.rate_limited.pk, flow.singleton_skipped.pk}
    delayed = set(cells(admin_client.get(RUNS_URL, {"flow": "delayed"}).content.decode(), "id"))
    # The first paced run may carry a note too: admission times it a moment after dispatch.
    expected = {flow.throttled.pk, flow.debounced.pk, flow.batched.pk}
    assert expected <= delayed <= {*expected, flow.started.pk}


def test_concurrency_key_filter_offers_held_keys_and_finds_runs_by_either_key(admin_client, flow):
    page = admin_client.get(RUNS_URL).content.decode()
    # Offered: the keys an executing run holds; user b's key is held by no one.
    assert "?concurrency_key=test-per-user%3Aa" in page
    assert "?concurrency_key=env%3Aexports" in page
    assert "?concurrency_key=test-per-user%3Ab" not in page

    by_user = admin_client.get(RUNS_URL, {"concurrency_key": "test-per-user:a"}).content.decode()
    assert set(cells(by_user, "id")) == {flow.holding_slot.pk, flow.waiting_for_slot.pk}
    # A key no executing run holds can still be asked for, and stays shown as chosen.
    other = admin_client.get(RUNS_URL, {"concurrency_key": "test-per-user:b"}).content.decode()
    assert cells(other, "id") == [flow.other_user.pk]
    assert "test-per-user:b" in other
    shared = admin_client.get(RUNS_URL, {"concurrency_key": "env:exports"}).content.decode()
    assert len(cells(shared, "id")) == 3  # the second key, shared across functions


def test_search_finds_runs_by_concurrency_key(admin_client, flow):
    found = admin_client.get(RUNS_URL, {"q": "test-per-user:b"}).content.decode()
    assert cells(found, "id") == [flow.other_user.pk]
    shared = admin_client.get(RUNS_URL, {"q": " env:exports "}).content.decode()
    assert len(cells(shared, "id")) == 3
    # Ids still work as before.
    found = admin_client.get(RUNS_URL, {"q": flow.other_user.pk.lower()}).content.decode()
    assert cells(found, "id") == [flow.other_user.pk]


def test_queued_run_page_says_it_waits_for_a_full_concurrency_key(admin_client, flow):
    page = admin_client.get(run_url(flow.waiting_for_slot)).content.decode()
    assert ">Flow control</h2>" in page
    assert readonly_value(page, "concurrency") == (
        "waiting for a concurrency slot: key test-per-user:a has 1 of 1 running "
        "test-per-user:a limit 1: 1 running now env:exports limit 5: 1 running now"
    )
    filtered = f"{RUNS_URL}?concurrency_key=test-per-user%3Aa"
    assert f'<a href="{filtered}">test-per-user:a</a>' in page
    assert readonly_value(page, "flow_note_text") == "-"
    assert readonly_value(page, "singleton_key_text") == "-"
    assert readonly_value(page, "debounce") == "-"

    # Another user's run has room; the run holding the slot is not waiting either.
    page = admin_client.get(run_url(flow.other_user)).content.decode()
    assert readonly_value(page, "concurrency") == (
        "test-per-user:b limit 1: 0 running now env:exports limit 5: 1 running now"
    )
    page = admin_client.get(run_url(flow.holding_slot)).content.decode()
    assert readonly_value(page, "concurrency").startswith("test-per-user:a limit 1: 1 running")


def test_slot_count_ignores_a_dead_workers_expired_lease(admin_client, flow):
    FunctionRun.objects.filter(pk=flow.holding_slot.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    page = admin_client.get(run_url(flow.waiting_for_slot)).content.decode()
    assert readonly_value(page, "concurrency") == (
        "test-per-user:a limit 1: 0 running now env:exports limit 5: 0 running now"
    )


def test_slot_count_reads_only_the_concurrency_key_indexes(flow):
    with CaptureQueriesContext(connection) as queries:
        assert running_on_key("test-per-user:a", timezone.now()) == 1
    [query] = queries.captured_queries
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's plan depends on its statistics; SQLite's does not")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
        plan = [row[-1] for row in cursor.fetchall() if "inngest_django_functionrun" in row[-1]]
    assert plan == [
        "SEARCH inngest_django_functionrun USING INDEX inngest_run_concurrency (concurrency_key=?)",
        "SEARCH inngest_django_functionrun USING INDEX inngest_run_concurrency_2 "
        "(concurrency_key_2=?)",
    ]


def test_run_pages_show_the_flow_note_and_debounce_and_singleton_keys(admin_client, flow):
    page = admin_client.get(run_url(flow.debounced)).content.decode()
    assert readonly_value(page, "flow_note_text") == "debounced for 1:00:00"
    assert readonly_value(page, "debounce") == (
        f"key a, starts by {until_text(flow.debounced.debounce_deadline)} at the latest"
    )
    assert readonly_value(page, "concurrency") == "-"

    page = admin_client.get(run_url(flow.singleton)).content.decode()
    assert readonly_value(page, "singleton_key_text") == "- (no key: one for the whole function)"
    page = admin_client.get(run_url(flow.batched)).content.decode()
    assert readonly_value(page, "batch") == (
        "2 events, still taking events for key - (no key: one for the whole function)"
    )
    assert readonly_value(page, "flow_note_text") == "batch of 2"
    page = admin_client.get(run_url(flow.rate_limited)).content.decode()
    assert readonly_value(page, "flow_note_text") == "rate limit: over 1 per 1:00:00"
    # Runs flow control did not touch show no such section.
    assert ">Flow control</h2>" not in admin_client.get(run_url(flow.untouched)).content.decode()


def test_flow_notes_and_slot_counts_make_no_query_per_run(admin_client, client, flow):
    skipped = page_queries(admin_client, RUNS_URL, {"flow": "skipped"})
    by_key = page_queries(admin_client, RUNS_URL, {"concurrency_key": "env:exports"})
    client.send([inngest.Event(name="t/limited") for _ in range(3)])
    client.send([inngest.Event(name="t/per-user", data={"user": u}) for u in "cde"])
    dispatch_pending()
    page = admin_client.get(RUNS_URL, {"flow": "skipped"}).content.decode()
    assert len(cells(page, "id")) == 5
    assert page_queries(admin_client, RUNS_URL, {"flow": "skipped"}) == skipped
    page = admin_client.get(RUNS_URL, {"concurrency_key": "env:exports"}).content.decode()
    assert len(cells(page, "id")) == 6
    assert page_queries(admin_client, RUNS_URL, {"concurrency_key": "env:exports"}) == by_key
    # The run page counts once per key: two keys, two counts more than a run with none.
    plain = page_queries(admin_client, run_url(flow.untouched))
    assert page_queries(admin_client, run_url(flow.other_user)) == plain + 2


def test_flow_state_list_shows_pacing_rows_read_only(admin_client, flow):
    page = admin_client.get(FLOW_STATES_URL).content.decode()
    rows = {
        (function_id, kind): ahead
        for function_id, kind, ahead in zip(
            cells(page, "function_id"), cells(page, "kind"), cells(page, "ahead"), strict=True
        )
    }
    # One start of one per hour: the next is about an hour away; two throttled starts: two.
    assert rows[("test-limited", "rate_limit")] in ("0:59:59", "1:00:00")
    assert rows[("test-paced", "throttle")] in ("1:59:59", "2:00:00")
    # Rows that only serialise decisions (singleton, debounce) have no pace to show.
    assert {ahead for (_, kind), ahead in rows.items() if kind not in PACED} <= {"-"}

    throttle = admin_client.get(FLOW_STATES_URL, {"kind__exact": "throttle"}).content.decode()
    assert cells(throttle, "function_id") == ["test-paced"]
    found = admin_client.get(FLOW_STATES_URL, {"q": "test-limited"}).content.decode()
    assert cells(found, "function_id") == ["test-limited"]
    state = FlowState.objects.get(function_id="test-paced")
    state_url = reverse("admin:inngest_django_flowstate_change", args=[state.pk])
    assert 'name="_save"' not in admin_client.get(state_url).content.decode()
    FlowState.objects.filter(pk=state.pk).update(tat=timezone.now() - timedelta(minutes=1))
    page = admin_client.get(FLOW_STATES_URL, {"kind__exact": "throttle"}).content.decode()
    assert cells(page, "ahead") == ["idle"]


# -- cron schedules and idempotency keys ------------------------------------------------


def test_cron_schedule_and_idempotency_key_lists_show_rows(admin_client, client, runs, drain):
    client.create_function(
        fn_id="nightly", trigger=inngest.TriggerCron(cron="TZ=Europe/Paris 0 3 * * *")
    )(lambda ctx: None)
    drain()
    assert CronSchedule.objects.filter(function_id="test-nightly").exists()
    page = admin_client.get(reverse("admin:inngest_django_cronschedule_changelist"))
    assert "TZ=Europe/Paris 0 3 * * *" in page.content.decode()
    assert IdempotencyKey.objects.filter(key="event:order-7").exists()
    page = admin_client.get(reverse("admin:inngest_django_idempotencykey_changelist"))
    assert "event:order-7" in page.content.decode()


# -- read-only ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "event",
        "functionrun",
        "deferintent",
        "outboxmessage",
        "cronschedule",
        "idempotencykey",
        "flowstate",
    ],
)
def test_add_is_forbidden_and_not_offered(admin_client, model):
    add_url = reverse(f"admin:inngest_django_{model}_add")
    changelist = admin_client.get(reverse(f"admin:inngest_django_{model}_changelist"))
    assert changelist.status_code == 200
    assert add_url not in changelist.content.decode()
    assert admin_client.get(add_url).status_code == 403


def test_runs_cannot_be_deleted_or_changed(admin_client, runs):
    delete_url = reverse("admin:inngest_django_functionrun_delete", args=[runs.failed.pk])
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = admin_client.post(run_url(runs.failed), {"status": "COMPLETED"})
    assert response.status_code == 403
    runs.failed.refresh_from_db()
    assert runs.failed.status == "FAILED"
    page = admin_client.get(RUNS_URL).content.decode()
    assert "delete_selected" not in page
    assert 'name="_save"' not in admin_client.get(run_url(runs.failed)).content.decode()
