"""The demo's one page and the forms on it, each sending its event in the request's transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

import inngest_django as inngest
from inngest_django.models import FunctionRun

from .flow_examples import FLOW_EXAMPLES, flow_rows
from .forms import CartForm, OrderForm, QuoteForm
from .inngest_functions import (
    INITIAL_STOCK,
    UNIT_PRICE_CENTS,
    activation_timeout,
    cart_reminder_delay,
    client,
)
from .listings import recent_accounts, recent_carts, recent_orders, recent_quotes
from .models import Account, Cart, EmailLog, Heartbeat, ImageCopy, Order, Quote, StockItem

ORDER_SKU = "mug-classic"


def product_imported(*, broken: bool = False) -> inngest.Event:
    """Return a shop/product.imported event for a new mug (with a broken image if asked)."""
    sku = f"mug-{secrets.token_hex(3)}"
    urls = [f"https://images.example.com/{sku}/{side}.jpg" for side in ("front", "back")]
    if broken:
        urls.append(f"https://images.example.com/{sku}/broken.jpg")
    return inngest.Event(
        name="shop/product.imported", data={"sku": sku, "name": "Demo mug", "image_urls": urls}
    )


DEMO_EVENTS: dict[str, Callable[[], inngest.Event]] = {
    "product": product_imported,
    "broken-product": lambda: product_imported(broken=True),
}


def order_placed(order: Order, *, cart: Cart | None = None) -> inngest.Event:
    """Return the shop/order.placed event of an order (naming its cart, if it had one)."""
    data = {
        "order_id": order.pk,
        "email": order.email,
        "sku": order.sku,
        "quantity": order.quantity,
        "amount": order.amount,
        "fail_shipment": order.fail_shipment,
    }
    if cart is not None:
        data["cart_id"] = cart.pk  # what cart-reminder's cancel rule compares
    return inngest.Event(name="shop/order.placed", data=data)


def home(request: HttpRequest) -> HttpResponse:
    """Show the demo's forms, recent runs, and what the steps wrote."""
    stock = StockItem.objects.filter(sku=ORDER_SKU).first()
    return render(
        request,
        "shop/home.html",
        {
            "order_form": OrderForm(),
            "cart_form": CartForm(),
            "quote_form": QuoteForm(),
            "orders": recent_orders(),
            "accounts": recent_accounts(),
            "carts": recent_carts(),
            "quotes": recent_quotes(),
            "flow_rows": flow_rows(),
            "stock": stock.on_hand if stock else INITIAL_STOCK,
            "order_sku": ORDER_SKU,
            "activation_timeout": activation_timeout(),
            "cart_reminder_delay": cart_reminder_delay(),
            "event_api_url": request.build_absolute_uri(
                reverse("inngest-event-api", args=[settings.SHOP_EVENT_KEY])
            ),
            "runs": FunctionRun.objects.select_related("parent_run").order_by("-created_at")[:20],
            "images": ImageCopy.objects.select_related("product").order_by("-id")[:5],
            "emails": EmailLog.objects.order_by("-id")[:8],
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


def create_order(
    *, email: str, quantity: int, fail_shipment: bool = False, cart: Cart | None = None
) -> Order:
    """Create an order and send its shop/order.placed event; call inside a transaction."""
    order = Order.objects.create(
        email=email,
        sku=ORDER_SKU,
        quantity=quantity,
        amount=quantity * UNIT_PRICE_CENTS,
        fail_shipment=fail_shipment,
    )
    # The order and its event commit together: no order without its run, nor the reverse.
    [order.event_id] = client.send(order_placed(order, cart=cart))
    order.save(update_fields=["event_id"])
    return order


@require_POST
def place_order(request: HttpRequest) -> HttpResponse:
    """Create an order and send its shop/order.placed event in one transaction."""
    form = OrderForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Invalid order: {form.errors.as_text()}")
    with transaction.atomic():
        order = create_order(
            email=f"buyer-{secrets.token_hex(3)}@example.com",
            quantity=form.cleaned_data["quantity"],
            fail_shipment=form.cleaned_data["fail_shipment"],
        )
    outcome = "shipping will fail" if order.fail_shipment else "it should ship"
    messages.success(
        request,
        f"Placed order #{order.pk} (event {order.event_id}); {outcome}. The worker picks it up.",
    )
    return redirect("shop:home")


# -- Onboarding: wait_for_event ----------------------------------------------------------------


@require_POST
def sign_up(request: HttpRequest) -> HttpResponse:
    """Create an account and send its user/created event in one transaction."""
    with transaction.atomic():
        account = Account.objects.create(email=f"user-{secrets.token_hex(3)}@example.com")
        event = inngest.Event(
            name="user/created", data={"user_id": account.pk, "email": account.email}
        )
        [account.event_id] = client.send(event)
        account.save(update_fields=["event_id"])
    messages.success(
        request,
        f"Sent user/created for {account.email} (event {account.event_id}); "
        "onboarding waits for the user to activate.",
    )
    return redirect("shop:home")


@require_POST
def activate(request: HttpRequest, pk: int) -> HttpResponse:
    """Activate an account and send the app/user.activated event onboarding waits for."""
    with transaction.atomic():
        account = get_object_or_404(Account.objects.select_for_update(), pk=pk)
        if account.activated_at is not None:
            return HttpResponseBadRequest("This account is activated already.")
        account.activated_at = timezone.now()
        account.save(update_fields=["activated_at"])
        [event_id] = client.send(
            inngest.Event(name="app/user.activated", data={"user_id": account.pk})
        )
    messages.success(request, f"Sent app/user.activated for {account.email} (event {event_id}).")
    return redirect("shop:home")


# -- Carts: a cancel rule ----------------------------------------------------------------------


@require_POST
def abandon_cart(request: HttpRequest) -> HttpResponse:
    """Create a cart and send its shop/cart.abandoned event in one transaction."""
    form = CartForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Invalid cart: {form.errors.as_text()}")
    with transaction.atomic():
        cart = Cart.objects.create(
            email=f"shopper-{secrets.token_hex(3)}@example.com",
            quantity=form.cleaned_data["quantity"],
        )
        event = inngest.Event(
            name="shop/cart.abandoned",
            data={"cart_id": cart.pk, "email": cart.email, "quantity": cart.quantity},
        )
        [cart.event_id] = client.send(event)
        cart.save(update_fields=["event_id"])
    messages.success(
        request,
        f"Sent shop/cart.abandoned for cart #{cart.pk} (event {cart.event_id}); "
        "cart-reminder sleeps, then emails unless the cart is ordered.",
    )
    return redirect("shop:home")


@require_POST
def order_cart(request: HttpRequest, pk: int) -> HttpResponse:
    """Place the order for a cart; its shop/order.placed event cancels the cart's reminder."""
    with transaction.atomic():
        cart = get_object_or_404(Cart.objects.select_for_update(), pk=pk)
        if cart.order_id is not None:
            return HttpResponseBadRequest("This cart is ordered already.")
        cart.order = create_order(email=cart.email, quantity=cart.quantity, cart=cart)
        cart.save(update_fields=["order"])
    messages.success(
        request,
        f"Placed order #{cart.order.pk} for cart #{cart.pk} (event {cart.order.event_id}); "
        "it cancels the cart's reminder.",
    )
    return redirect("shop:home")


# -- Quotes: invoke ----------------------------------------------------------------------------


@require_POST
def request_quote(request: HttpRequest) -> HttpResponse:
    """Create a quote and send its shop/quote.requested event in one transaction."""
    form = QuoteForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Invalid quote: {form.errors.as_text()}")
    with transaction.atomic():
        quote = Quote.objects.create(sku=ORDER_SKU, quantity=form.cleaned_data["quantity"])
        event = inngest.Event(
            name="shop/quote.requested",
            data={"quote_id": quote.pk, "sku": quote.sku, "quantity": quote.quantity},
        )
        [quote.event_id] = client.send(event)
        quote.save(update_fields=["event_id"])
    messages.success(
        request,
        f"Sent shop/quote.requested for quote #{quote.pk} (event {quote.event_id}); "
        "quote-order invokes price-order.",
    )
    return redirect("shop:home")


# -- Flow control: a burst of events per option ------------------------------------------------


@require_POST
def send_flow_burst(request: HttpRequest) -> HttpResponse:
    """Send the chosen flow-control example's burst of events, all at once."""
    example = FLOW_EXAMPLES.get(request.POST.get("example", ""))
    if example is None:
        return HttpResponseBadRequest("Unknown flow-control example.")
    events = example.burst()
    with transaction.atomic():
        client.send(events)
    messages.success(
        request,
        f"Sent {len(events)} {events[0].name} events at once to {example.function.id}: "
        f"{example.expect}",
    )
    return redirect("shop:home")


# -- Runs ----------------------------------------------------------------------------------------


@require_POST
def cancel_run(request: HttpRequest, run_id: str) -> HttpResponse:
    """Ask a run to stop with inngest_django.cancel_run."""
    if inngest.cancel_run(run_id):
        messages.success(request, f"Asked run {run_id} to stop; the worker cancels it.")
    else:
        messages.warning(request, f"Run {run_id} has finished already.")
    return redirect("shop:home")
