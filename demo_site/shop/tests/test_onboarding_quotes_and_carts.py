"""The demo's waits, invokes and cancel rules under test, with run_function and drain."""

from __future__ import annotations

from typing import Any

import pytest

import inngest_django as inngest
from demo_site.shop import inngest_functions as functions
from demo_site.shop.models import Cart, Order
from inngest_django.models import FunctionRun
from inngest_django.testing import Timeout, drain, run_function

USER = {"user_id": 7, "email": "ada@example.com"}
PRICE = {"sku": "MUG", "quantity": 4, "unit_price": 1200, "discount_percent": 10, "total": 4320}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the emails the functions send, instead of sending and logging them."""
    emails: list[dict[str, Any]] = []

    def deliver_email(to: str, subject: str, body: str, run_id: str) -> str:
        emails.append({"to": to, "subject": subject})
        return subject

    monkeypatch.setattr(functions, "deliver_email", deliver_email)
    return emails


def test_onboarding_sends_tips_once_the_user_activates(sent):
    activated = {"data": {"user_id": 7}}
    result = run_function(
        functions.onboarding, data=USER, step_stubs={"wait-for-activation": activated}
    )

    assert result.output == "activated"
    assert result.steps["wait-for-activation"].name == "app/user.activated"
    assert sent == [{"to": "ada@example.com", "subject": functions.TIPS_SUBJECT}]


def test_onboarding_nudges_when_the_wait_times_out(sent):
    result = run_function(
        functions.onboarding, data=USER, step_stubs={"wait-for-activation": Timeout}
    )

    assert result.output == "nudged"
    assert sent == [{"to": "ada@example.com", "subject": functions.NUDGE_SUBJECT}]


def test_another_users_activation_is_not_a_valid_stub():
    # The stub must be an event the real wait would accept: match="data.user_id".
    with pytest.raises(ValueError, match="user_id"):
        run_function(
            functions.onboarding,
            data=USER,
            step_stubs={"wait-for-activation": {"data": {"user_id": 8}}},
        )


def test_price_order_takes_ten_percent_off_from_three_mugs():
    assert run_function(functions.price_order, data={"sku": "MUG", "quantity": 4}).output == PRICE
    two = run_function(functions.price_order, data={"sku": "MUG", "quantity": 2}).output
    assert (two["discount_percent"], two["total"]) == (0, 2400)


def test_price_order_refuses_too_many_mugs_without_retrying():
    result = run_function(functions.price_order, data={"sku": "MUG", "quantity": 11})

    assert result.status == "FAILED"
    assert isinstance(result.error, inngest.NonRetriableError)
    assert result.attempts["compute-price"] == 1


def test_quote_order_saves_what_price_order_returns():
    quote = {"quote_id": 3, "sku": "MUG", "quantity": 4}
    result = run_function(
        functions.quote_order, data=quote, step_stubs={"price-order": PRICE, "save-quote": 4320}
    )

    assert result.output == {"status": "priced", **PRICE}
    assert list(result.steps) == ["price-order", "save-quote"]


def test_quote_order_records_a_refusal_when_price_order_fails():
    quote = {"quote_id": 3, "sku": "MUG", "quantity": 11}
    refused = ValueError("we price at most 10 mugs at a time, not 11")
    result = run_function(
        functions.quote_order,
        data=quote,
        step_stubs={"price-order": refused, "save-refusal": "refused"},
    )

    assert result.output == {"status": "refused", "reason": "refused"}
    assert "save-quote" not in result.steps


def test_cart_reminder_emails_after_its_sleep(sent):
    cart = {"cart_id": 5, "email": "grace@example.com", "quantity": 2}
    result = run_function(functions.cart_reminder, data=cart)

    assert result.output == "You left 2 mugs in your cart"
    assert list(result.steps) == ["wait-before-reminding", "send-reminder"]
    assert sent == [{"to": "grace@example.com", "subject": result.output}]


@pytest.mark.django_db
def test_the_order_for_a_cart_cancels_its_reminder_only(sent):
    carts = [Cart.objects.create(email=f"shopper-{n}@example.com", quantity=1) for n in range(2)]
    for cart in carts:
        inngest.send(
            {
                "name": "shop/cart.abandoned",
                "data": {"cart_id": cart.pk, "email": cart.email, "quantity": 1},
            }
        )
    drain()  # both reminders now sleep (for SHOP_CART_REMINDER_DELAY, longer than drain waits)

    ordered = carts[1]
    order = Order.objects.create(email=ordered.email, sku="MUG", quantity=1, amount=1200)
    inngest.send(
        {
            "name": "shop/order.placed",
            "data": {
                "order_id": order.pk,
                "email": order.email,
                "sku": "MUG",
                "quantity": 1,
                "amount": 1200,
                "cart_id": ordered.pk,
            },
        }
    )
    drain()

    reminders = {
        run.event.data["cart_id"]: run
        for run in FunctionRun.objects.filter(function_id=functions.cart_reminder.id)
    }
    assert reminders[ordered.pk].status == "CANCELLED"
    assert reminders[ordered.pk].cancel_reason.startswith("cancel rule: event shop/order.placed")
    assert reminders[carts[0].pk].status == "SLEEPING"
    # The order's confirmation went out; no reminder did.
    assert [email["subject"] for email in sent] == [f"Thanks for your order #{order.pk}!"]
