"""The run page's defer table, the defer list and page, and the outbox list."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

import inngest_django as inngest
from inngest_django.models import FunctionRun, OutboxMessage
from tests.helpers import (
    DEFERS_URL,
    OUTBOX_URL,
    RUNS_URL,
    cells,
    defer_url,
    page_queries,
    raw_cells,
    readonly_value,
    run_url,
)

pytestmark = pytest.mark.django_db


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


def test_defer_made_with_an_experiment_shows_its_variant(admin_client, inngest_client, drain):
    @inngest.create_defer(inngest_client, id="follow-up")
    def follow_up(ctx):
        return ctx.parents[0].experiment.variant

    @inngest_client.create_function(
        fn_id="checkout", trigger=inngest.TriggerEvent(event="t/checkout")
    )
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

    inngest_client.send(inngest.Event(name="t/checkout"))
    drain()
    run = FunctionRun.objects.get(function_id="test-checkout")
    page = admin_client.get(run_url(run)).content.decode()
    assert cells(page, "experiment_variant") == ["checkout-flow: fast"]
    assert FunctionRun.objects.get(function_id="test-follow-up").output == "fast"


def test_scheduled_defer_not_relayed_yet_says_so(admin_client, inngest_client, drain):
    @inngest.create_defer(inngest_client, id="clean-up")
    def clean_up(ctx):
        return None

    @inngest_client.create_function(
        fn_id="deferring", trigger=inngest.TriggerEvent(event="t/deferring")
    )
    def deferring(ctx):
        ctx.defer("clean-up-later", function=clean_up, data={"bucket": "tmp"})

    inngest_client.send(inngest.Event(name="t/deferring"))
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


def test_defer_pages_make_no_query_per_defer(admin_client, inngest_client, drain, defers):
    @inngest.create_defer(inngest_client, id="ping")
    def ping(ctx):
        return None

    @inngest_client.create_function(
        fn_id="fan-out", trigger=inngest.TriggerEvent(event="t/fan-out")
    )
    def fan_out(ctx):
        for index in range(6):
            handle = ctx.defer(f"ping-{index}", function=ping, data={"index": index})
            if index % 2:
                handle.cancel()

    inngest_client.send(inngest.Event(name="t/fan-out"))
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
