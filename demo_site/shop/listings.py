"""What the demo page lists: orders, accounts, carts and quotes, each with the runs it started."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inngest_django.enums import RunStatus
from inngest_django.models import DeferIntent, FunctionRun

from .inngest_functions import cart_reminder, onboarding, price_order, process_order, quote_order
from .models import Account, Cart, Order, Quote


def runs_by_event(function_id: str, event_ids: Iterable[str]) -> dict[str, FunctionRun]:
    """Return the runs of one function started by these events, by event id."""
    runs = FunctionRun.objects.filter(function_id=function_id, event_id__in=list(event_ids))
    return {run.event_id: run for run in runs}


@dataclass(frozen=True)
class OrderRow:
    """One order as the page shows it: its process-order run, what the steps and cleanups did."""

    order: Order
    run: FunctionRun | None
    charge_id: str
    refunds: int
    allocated: int
    releases: int
    defers: list[DeferIntent]

    @property
    def amount(self) -> str:
        return f"{self.order.amount / 100:.2f}"


def recent_orders(limit: int = 8) -> list[OrderRow]:
    """Return the latest orders with their process-order runs, charges, refunds and releases."""
    orders = list(
        Order.objects.order_by("-id")
        .select_related("charge", "allocation")
        .prefetch_related("charge__refunds", "allocation__releases")[:limit]
    )
    runs = {
        run.event_id: run
        for run in FunctionRun.objects.filter(
            function_id=process_order.id, event_id__in=[order.event_id for order in orders]
        ).prefetch_related("defers__deferred_run")
    }
    rows = []
    for order in orders:
        charge = getattr(order, "charge", None)
        allocation = getattr(order, "allocation", None)
        run = runs.get(order.event_id)
        rows.append(
            OrderRow(
                order=order,
                run=run,
                charge_id=charge.charge_id if charge else "",
                refunds=len(charge.refunds.all()) if charge else 0,
                allocated=allocation.quantity if allocation else 0,
                releases=len(allocation.releases.all()) if allocation else 0,
                defers=list(run.defers.all()) if run else [],
            )
        )
    return rows


@dataclass(frozen=True)
class AccountRow:
    """One signed-up user and the onboarding run waiting for their activation."""

    account: Account
    run: FunctionRun | None

    @property
    def can_activate(self) -> bool:
        """Return True once onboarding has reached its wait (or finished), until activated."""
        # An activation sent before the wait began would not count: offer it only after.
        started = self.run is not None and self.run.status not in (
            RunStatus.QUEUED,
            RunStatus.RUNNING,
        )
        return started and self.account.activated_at is None


def recent_accounts(limit: int = 6) -> list[AccountRow]:
    """Return the latest accounts with their onboarding runs."""
    accounts = list(Account.objects.order_by("-id")[:limit])
    runs = runs_by_event(onboarding.id, (account.event_id for account in accounts))
    return [AccountRow(account, runs.get(account.event_id)) for account in accounts]


@dataclass(frozen=True)
class CartRow:
    """One abandoned cart, its cart-reminder run and the order placed for it, if any."""

    cart: Cart
    run: FunctionRun | None


def recent_carts(limit: int = 6) -> list[CartRow]:
    """Return the latest carts with their cart-reminder runs."""
    carts = list(Cart.objects.select_related("order").order_by("-id")[:limit])
    runs = runs_by_event(cart_reminder.id, (cart.event_id for cart in carts))
    return [CartRow(cart, runs.get(cart.event_id)) for cart in carts]


@dataclass(frozen=True)
class QuoteRow:
    """One quote, its quote-order run and the price-order run that run invoked."""

    quote: Quote
    run: FunctionRun | None
    invoked: FunctionRun | None

    @property
    def total(self) -> str:
        return "" if self.quote.total is None else f"{self.quote.total / 100:.2f}"


def recent_quotes(limit: int = 6) -> list[QuoteRow]:
    """Return the latest quotes with their quote-order runs and the price-order runs invoked."""
    quotes = list(Quote.objects.order_by("-id")[:limit])
    runs = runs_by_event(quote_order.id, (quote.event_id for quote in quotes))
    invoked = {
        run.parent_run_id: run
        for run in FunctionRun.objects.filter(
            function_id=price_order.id, parent_run_id__in=[run.pk for run in runs.values()]
        )
    }
    rows = []
    for quote in quotes:
        run = runs.get(quote.event_id)
        rows.append(QuoteRow(quote, run, invoked.get(run.pk) if run else None))
    return rows
