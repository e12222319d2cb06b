"""The home page's flow-control examples: each option's function and the burst that shows it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import inngest_django as inngest
from inngest_django.models import FunctionRun

from . import inngest_functions as functions

# Runs listed per example on the home page, newest burst last.
LISTED_RUNS = 6


@dataclass(frozen=True)
class FlowExample:
    """One button of the page's Flow control section."""

    name: str
    function: inngest.Function
    option: str
    expect: str
    burst: Callable[[], list[inngest.Event]]


def _events(name: str, datas: list[dict]) -> list[inngest.Event]:
    return [inngest.Event(name=name, data=data) for data in datas]


def _exports() -> list[inngest.Event]:
    users = (1, 1, 1, 2, 2)
    datas = [{"user_id": user, "n": n} for n, user in enumerate(users, start=1)]
    return _events("shop/export.requested", datas)


def _restocks() -> list[inngest.Event]:
    return _events("shop/stock.restocked", [{"sku": f"mug-{n}"} for n in range(1, 7)])


def _resets() -> list[inngest.Event]:
    return _events("shop/reset.requested", [{"email": "ada@example.com"}] * 5)


def _edits() -> list[inngest.Event]:
    sku = f"mug-{secrets.token_hex(2)}"
    return _events("shop/product.edited", [{"sku": sku, "revision": n} for n in range(1, 6)])


def _payments() -> list[inngest.Event]:
    datas = [{"order": n, "express": False} for n in range(1, 5)]
    return _events("shop/order.paid", [*datas, {"order": 5, "express": True}])


def _cart_updates() -> list[inngest.Event]:
    return _events("shop/cart.updated", [{"user_id": 7}] * 3)


def _webhooks() -> list[inngest.Event]:
    payment = f"pay_{secrets.token_hex(4)}"
    return _events("shop/payment.authorized", [{"payment_id": payment}] * 3)


FLOW_EXAMPLES = {
    example.name: example
    for example in (
        FlowExample(
            "concurrency",
            functions.export_account_data,
            'concurrency=[Concurrency(limit=1, key="event.data.user_id")]',
            "user 1's three exports run one after another, user 2's beside them.",
            _exports,
        ),
        FlowExample(
            "throttle",
            functions.notify_restock,
            'throttle=Throttle(limit=3, period="6s")',
            "the six runs start 2 seconds apart; none is dropped.",
            _restocks,
        ),
        FlowExample(
            "rate-limit",
            functions.send_password_reset,
            'rate_limit=RateLimit(limit=2, period="1m", key="event.data.email")',
            "two resets run, three are skipped (all five, if you click again within the minute).",
            _resets,
        ),
        FlowExample(
            "debounce",
            functions.reindex_product,
            f'debounce=Debounce(period="{functions.debounce_period()}", key="event.data.sku")',
            "five edits, one run, with the last edit's event once the edits stop.",
            _edits,
        ),
        FlowExample(
            "priority",
            functions.pack_order,
            'priority=Priority(run="event.data.express ? 60 : 0"), concurrency limit 1',
            "order 5 was paid last, but it is express: it is packed first.",
            _payments,
        ),
        FlowExample(
            "singleton",
            functions.rebuild_recommendations,
            'singleton=Singleton(key="event.data.user_id", mode="skip")',
            "one rebuild runs; the two sent while it is active are skipped.",
            _cart_updates,
        ),
        FlowExample(
            "idempotency",
            functions.capture_payment,
            'idempotency="event.data.payment_id"',
            "the same webhook three times: one capture, two skipped.",
            _webhooks,
        ),
    )
}


@dataclass(frozen=True)
class FlowRow:
    """One example as the page shows it, with its latest runs."""

    example: FlowExample
    runs: list[FunctionRun]


def flow_rows() -> list[FlowRow]:
    """Return each example with its latest runs, oldest first."""
    rows = []
    for example in FLOW_EXAMPLES.values():
        latest = FunctionRun.objects.filter(function_id=example.function.id).order_by(
            "-created_at", "-id"
        )[:LISTED_RUNS]
        rows.append(FlowRow(example, list(reversed(latest))))
    return rows
