"""The shop's durable functions under test, as a project tests its own: run_function and drain."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

import inngest_django as inngest
from demo_site.shop import inngest_functions as functions
from demo_site.shop.models import Order, Refund
from inngest_django.models import FunctionRun
from inngest_django.testing import drain, run_function

ORDER = {
    "order_id": 7,
    "email": "ada@example.com",
    "sku": "MUG",
    "quantity": 2,
    "amount": 2400,
    "fail_shipment": False,
}
# Stand-ins for the steps that write to the shop's tables, so these tests need no database.
CHARGED_AND_ALLOCATED = {
    "charge-card": {"id": "ch_test", "amount": 2400},
    "allocate-inventory": {"sku": "MUG", "quantity": 2},
}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the emails the functions send, instead of sending and logging them."""
    emails: list[dict[str, Any]] = []

    def deliver_email(to: str, subject: str, body: str, run_id: str) -> str:
        emails.append({"to": to, "subject": subject, "body": body})
        return subject

    monkeypatch.setattr(functions, "deliver_email", deliver_email)
    return emails


def test_order_placed_defers_the_confirmation_email(sent):
    result = run_function(functions.order_placed, data=ORDER)

    assert result.status == "COMPLETED"
    [confirmation] = result.scheduled
    assert confirmation.function is functions.send_email
    assert confirmation.data == {
        "to": "ada@example.com",
        "body": "Thanks for your order #7!\n\nWe are preparing it now.",
    }

    # The deferred function, run with what order-placed scheduled.
    email = run_function(confirmation.function, data=confirmation.data)
    assert email.output == "Thanks for your order #7!"
    assert sent == [{"to": "ada@example.com", "subject": email.output, **confirmation.data}]


def test_signup_email_follows_up_after_the_sleep(sent):
    result = run_function(functions.send_signup_email, data={"email": "grace@example.com"})

    assert result.status == "COMPLETED"
    assert list(result.steps) == [
        "send-the-user-a-signup-email",
        "wait-for-the-future",
        "do-some-work-in-the-future",
    ]
    assert [email["subject"] for email in sent] == ["Welcome!", "How is it going?"]


def test_process_order_ships_and_cancels_both_cleanups():
    stubs = {**CHARGED_AND_ALLOCATED, "create-shipment": "TRK00000007"}
    result = run_function(functions.process_order, data=ORDER, step_stubs=stubs)

    result.raise_for_error()
    assert result.output == {
        "status": "shipped",
        "charge_id": "ch_test",
        "tracking_number": "TRK00000007",
    }
    assert [call.defer_id for call in result.defers] == ["refund-if-failed", "release-if-failed"]
    assert result.scheduled == []


def test_process_order_that_cannot_ship_refunds_and_releases(monkeypatch):
    # create-shipment runs for real: an order placed with fail_shipment never gets a label.
    order = {**ORDER, "fail_shipment": True}
    result = run_function(functions.process_order, data=order, step_stubs=CHARGED_AND_ALLOCATED)

    assert result.status == "FAILED"
    assert isinstance(result.error, inngest.StepError)
    assert result.error.name == "RetryAfterError"
    assert result.attempts["create-shipment"] == 2  # process-order has retries=1
    refund, release = result.scheduled
    assert (refund.function_id, refund.data) == (
        "shop-refund-payment",
        {"charge_id": "ch_test", "amount": 2400},
    )
    assert (release.function_id, release.data) == (
        "shop-release-inventory",
        {"sku": "MUG", "quantity": 2},
    )

    refunded = run_function(
        refund.function, data=refund.data, parent=refund.parent, step_stubs={"issue-refund": 1}
    )
    assert refunded.output == 1

    released: list[tuple[Any, ...]] = []
    monkeypatch.setattr(functions, "release_stock", lambda *args: released.append(args) or 1)
    run_function(release.function, data=release.data, parent=release.parent).raise_for_error()
    # release-inventory finds the allocation through its parent: the process-order run.
    assert released == [("test-run", "MUG", 2, "test-run")]


@pytest.mark.django_db
def test_a_placed_order_ships_and_confirms_through_the_worker():
    order = Order.objects.create(email="ada@example.com", sku="MUG", quantity=2, amount=2400)
    inngest.send({"name": "shop/order.placed", "data": {**ORDER, "order_id": order.pk}})

    drain()

    # The heartbeat cron may tick while drain() runs.
    runs = dict(
        FunctionRun.objects.exclude(function_id="shop-record-heartbeat").values_list(
            "function_id", "status"
        )
    )
    assert runs == {
        "shop-order-placed": "COMPLETED",
        "shop-process-order": "COMPLETED",
        "shop-send-email": "COMPLETED",
    }
    order.refresh_from_db()
    assert order.tracking_number == f"TRK{order.pk:08d}"
    assert not Refund.objects.exists()
    assert [message.subject for message in mail.outbox] == [f"Thanks for your order #{order.pk}!"]
