"""The demo's one page: recent runs and orders, buttons that send each demo event, an order form."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

import inngest_django as inngest
from inngest_django.models import DeferIntent, FunctionRun

from .forms import OrderForm
from .inngest_functions import INITIAL_STOCK, client, process_order
from .models import EmailLog, Heartbeat, ImageCopy, Order, StockItem

ORDER_SKU = "mug-classic"
UNIT_PRICE_CENTS = 1200


def product_imported(*, broken: bool = False) -> inngest.Event:
    """Return a shop/product.imported event for a new mug (with a broken image if asked)."""
    sku = f"mug-{secrets.token_hex(3)}"
    urls = [f"https://images.example.com/{sku}/{side}.jpg" for side in ("front", "back")]
    if broken:
        urls.append(f"https://images.example.com/{sku}/broken.jpg")
    return inngest.Event(
        name="shop/product.imported", data={"sku": sku, "name": "Demo mug", "image_urls": urls}
    )


def user_created() -> inngest.Event:
    """Return a user/created event for a new user."""
    return inngest.Event(
        name="user/created", data={"email": f"user-{secrets.token_hex(3)}@example.com"}
    )


DEMO_EVENTS: dict[str, Callable[[], inngest.Event]] = {
    "product": product_imported,
    "broken-product": lambda: product_imported(broken=True),
    "user": user_created,
}


def order_placed(order: Order) -> inngest.Event:
    """Return the shop/order.placed event of an order."""
    return inngest.Event(
        name="shop/order.placed",
        data={
            "order_id": order.pk,
            "email": order.email,
            "sku": order.sku,
            "quantity": order.quantity,
            "amount": order.amount,
            "fail_shipment": order.fail_shipment,
        },
    )


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


def home(request: HttpRequest) -> HttpResponse:
    """Show the demo buttons, the order form, recent runs and orders, and what the steps wrote."""
    stock = StockItem.objects.filter(sku=ORDER_SKU).first()
    return render(
        request,
        "shop/home.html",
        {
            "order_form": OrderForm(),
            "orders": recent_orders(),
            "stock": stock.on_hand if stock else INITIAL_STOCK,
            "order_sku": ORDER_SKU,
            "runs": FunctionRun.objects.select_related("parent_run").order_by("-created_at")[:20],
            "images": ImageCopy.objects.select_related("product").order_by("-id")[:5],
            "emails": EmailLog.objects.order_by("-id")[:5],
            "heartbeats": Heartbeat.objects.count(),
            "last_heartbeat": Heartbeat.objects.order_by("-id").first(),
        },
    )


@require_POST
def send_demo_event(request: HttpRequest) -> HttpResponse:
    """Send the chosen demo event in this request's transaction."""
    build = DEMO_EVENTS.get(request.POST.get("event", ""))
    if build is None:
        return HttpResponseBadRequest("Unknown demo event.")
    event = build()
    with transaction.atomic():
        # Stored with this transaction: had it rolled back, no function would run.
        [event_id] = client.send(event)
    messages.success(request, f"Sent {event.name} (event {event_id}); the worker picks it up.")
    return redirect("shop:home")


@require_POST
def place_order(request: HttpRequest) -> HttpResponse:
    """Create an order and send its shop/order.placed event in one transaction."""
    form = OrderForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Invalid order: {form.errors.as_text()}")
    quantity = form.cleaned_data["quantity"]
    with transaction.atomic():
        order = Order.objects.create(
            email=f"buyer-{secrets.token_hex(3)}@example.com",
            sku=ORDER_SKU,
            quantity=quantity,
            amount=quantity * UNIT_PRICE_CENTS,
            fail_shipment=form.cleaned_data["fail_shipment"],
        )
        # The order and its event commit together: no order without its run, nor the reverse.
        [order.event_id] = client.send(order_placed(order))
        order.save(update_fields=["event_id"])
    outcome = "shipping will fail" if order.fail_shipment else "it should ship"
    messages.success(
        request,
        f"Placed order #{order.pk} (event {order.event_id}); {outcome}. The worker picks it up.",
    )
    return redirect("shop:home")
