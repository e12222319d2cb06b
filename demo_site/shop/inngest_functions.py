"""The demo's durable functions, after the seed examples; each step writes to the shop's tables."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F
from pydantic import BaseModel

import inngest_django as inngest

from .models import (
    Allocation,
    Charge,
    EmailLog,
    Heartbeat,
    ImageCopy,
    Order,
    Product,
    Quote,
    Refund,
    StockItem,
    StockRelease,
)

client = inngest.Inngest(app_id="shop")

FOLLOW_UP_DELAY = timedelta(seconds=30)
# Stock of a SKU the first time an order allocates it.
INITIAL_STOCK = 100
UNIT_PRICE_CENTS = 1200
# price-order takes 10% off from 3 mugs, and prices at most 10 at a time.
DISCOUNT_FROM_QUANTITY = 3
DISCOUNT_PERCENT = 10
MAX_PRICED_QUANTITY = 10
# Used when the settings do not name them (SHOP_ACTIVATION_TIMEOUT, SHOP_CART_REMINDER_DELAY).
DEFAULT_ACTIVATION_TIMEOUT = "2m"
DEFAULT_CART_REMINDER_DELAY = "1m"
DEFAULT_DEBOUNCE_PERIOD = "5s"
# How long the flow-control examples' busy steps work, so that queues and slots show.
FLOW_WORK_SECONDS = 1.0
TIPS_SUBJECT = "Tips for your first week"
NUDGE_SUBJECT = "Your account is waiting"


def save_product(sku: str, name: str) -> int:
    """Create or update the product and return its primary key."""
    product, _ = Product.objects.update_or_create(sku=sku, defaults={"name": name})
    return product.pk


def copy_image(product_id: int, url: str, run_id: str) -> str:
    """Pretend to copy one image to object storage, and record the copy."""
    if "broken" in url:
        # Retried with backoff (15 s, 30 s, 1 m, ...); the admin shows each failed attempt.
        raise ConnectionError(f"could not download {url}")
    product = Product.objects.get(pk=product_id)
    target = f"s3://demo-bucket/products/{product.sku}/{PurePosixPath(urlparse(url).path).name}"
    ImageCopy.objects.create(product=product, source_url=url, copied_to=target, run_id=run_id)
    return target


@client.create_function(
    fn_id="import-product-images",
    trigger=inngest.TriggerEvent(event="shop/product.imported"),
)
def import_product_images(ctx: inngest.Context) -> dict[str, Any]:
    """Save the product, then copy each image in a step of its own."""
    data = ctx.event.data
    product_id = ctx.step.run("save-product", save_product, data["sku"], data.get("name", ""))
    # The same step id in a loop becomes copy-image, copy-image:1, copy-image:2, ...
    copies = [
        ctx.step.run("copy-image", copy_image, product_id, url, ctx.run_id)
        for url in data.get("image_urls", [])
    ]
    return {"product_id": product_id, "copies": copies}


def deliver_email(to: str, subject: str, body: str, run_id: str) -> str:
    """Send an email through Django's email backend and log it."""
    # An email cannot be rolled back: if this step failed after send_mail, its retry would
    # send again. Steps are at-least-once for the outside world, exactly-once for the database.
    send_mail(subject, body, None, [to])
    EmailLog.objects.create(to=to, subject=subject, run_id=run_id)
    return subject


def greet(to: str, subject: str, run_id: str) -> str:
    """Send the signup emails: a hello that names the run."""
    body = f"Hello {to}!\n\nThis email was sent by run {run_id}."
    return deliver_email(to, subject, body, run_id)


def follow_up_at(event: inngest.Event) -> datetime | str:
    """Return the event's `follow_up_at`, or 30 seconds after the event was sent."""
    # Derived from the event, not the clock, so every replay computes the same moment.
    return event.data.get("follow_up_at") or (
        datetime.fromtimestamp(event.ts / 1000, tz=UTC) + FOLLOW_UP_DELAY
    )


@client.create_function(
    fn_id="send-signup-email",
    trigger=inngest.TriggerEvent(event="user/created"),
)
def send_signup_email(ctx: inngest.Context) -> None:
    """Welcome a new user, sleep until later, then follow up."""
    email = ctx.event.data["email"]
    ctx.step.run("send-the-user-a-signup-email", greet, email, "Welcome!", ctx.run_id)
    ctx.step.sleep_until("wait-for-the-future", follow_up_at(ctx.event))
    ctx.step.run("do-some-work-in-the-future", greet, email, "How is it going?", ctx.run_id)


@client.create_function(
    fn_id="record-heartbeat",
    trigger=inngest.TriggerCron(cron="TZ=Europe/Paris * * * * *"),
)
def record_heartbeat(ctx: inngest.Context) -> int:
    """Record one heartbeat row per minute, however many workers run."""
    return ctx.step.run("record-heartbeat", lambda: Heartbeat.objects.create(run_id=ctx.run_id).pk)


# -- Deferred functions: a confirmation email, and the cleanups of an order -----------------


class Email(BaseModel):
    """What send-email sends: a recipient and a text whose first line is the subject."""

    to: str
    body: str


@inngest.create_defer(client, id="send-email", schema=Email)
def send_email(ctx: inngest.Context) -> str:
    """Send one email in the background of the run that deferred it."""
    message: Email = ctx.event.data  # validated again on receipt
    subject = message.body.splitlines()[0][:200]
    return ctx.step.run("send", deliver_email, message.to, subject, message.body, ctx.run_id)


@client.create_function(
    fn_id="order-placed",
    trigger=inngest.TriggerEvent(event="shop/order.placed"),
)
def order_placed(ctx: inngest.Context) -> None:
    """Hand the confirmation email to send-email, and finish without waiting for it."""
    data = ctx.event.data
    ctx.defer(
        "send-confirmation",
        function=send_email,
        data={
            "to": data["email"],
            "body": f"Thanks for your order #{data['order_id']}!\n\nWe are preparing it now.",
        },
    )


class ChargeToRefund(BaseModel):
    """The charge refund-payment gives back."""

    charge_id: str
    amount: int


class StockToRelease(BaseModel):
    """The stock release-inventory puts back on hand."""

    sku: str
    quantity: int


def issue_refund(charge_id: str, amount: int, run_id: str) -> int:
    """Pretend to refund the card, once per charge, and record the refund."""
    charge = Charge.objects.get(charge_id=charge_id)
    # A rerun of a failed order defers the refund again: the charge is refunded only once.
    refund, _ = Refund.objects.get_or_create(
        charge=charge, defaults={"amount": amount, "run_id": run_id}
    )
    return refund.pk


@inngest.create_defer(client, id="refund-payment", schema=ChargeToRefund)
def refund_payment(ctx: inngest.Context) -> int:
    """Refund the charge of an order that process-order could not finish."""
    charge: ChargeToRefund = ctx.event.data
    return ctx.step.run("issue-refund", issue_refund, charge.charge_id, charge.amount, ctx.run_id)


def release_stock(parent_run_id: str, sku: str, quantity: int, run_id: str) -> int:
    """Put allocated stock back on hand, once per allocation, and record the release."""
    allocation = Allocation.objects.get(run_id=parent_run_id)
    release, released_now = StockRelease.objects.get_or_create(
        allocation=allocation, defaults={"quantity": quantity, "run_id": run_id}
    )
    if released_now:
        StockItem.objects.filter(sku=sku).update(on_hand=F("on_hand") + quantity)
    return release.pk


@inngest.create_defer(client, id="release-inventory", schema=StockToRelease)
def release_inventory(ctx: inngest.Context) -> int:
    """Release the stock of an order that process-order could not finish."""
    stock: StockToRelease = ctx.event.data
    # ctx.parents names the process-order run that deferred this one, and so its allocation.
    parent_run_id = ctx.parents[0].run_id
    return ctx.step.run(
        "release-stock", release_stock, parent_run_id, stock.sku, stock.quantity, ctx.run_id
    )


# process-order's steps are idempotent, keyed on the order, as are its cleanups above: a rerun
# (the admin's, or rerun_run) runs every step again and finds what the first run did, instead
# of charging, allocating, refunding or releasing twice.


def charge_card(order_id: int, amount: int, run_id: str) -> dict[str, Any]:
    """Pretend to charge the card, once per order, and record the charge."""
    # A real payment API takes an idempotency key (the order id) for the same reason.
    charge, _ = Charge.objects.get_or_create(
        order_id=order_id,
        defaults={"charge_id": f"ch_{secrets.token_hex(8)}", "amount": amount, "run_id": run_id},
    )
    return {"id": charge.charge_id, "amount": charge.amount}


def allocate_inventory(order_id: int, sku: str, quantity: int, run_id: str) -> dict[str, Any]:
    """Take the order's items off the shelf, once per order, and record the allocation."""
    allocation, allocated_now = Allocation.objects.update_or_create(
        order_id=order_id,
        # A rerun takes the allocation over, so its release-inventory finds it by run id.
        defaults={"run_id": run_id},
        create_defaults={"sku": sku, "quantity": quantity, "run_id": run_id},
    )
    if allocated_now:
        StockItem.objects.get_or_create(sku=sku, defaults={"on_hand": INITIAL_STOCK})
        StockItem.objects.filter(sku=sku).update(on_hand=F("on_hand") - quantity)
    return {"sku": allocation.sku, "quantity": allocation.quantity}


def create_shipment(order_id: int, allocation: dict[str, Any], fail: bool) -> str:
    """Pretend to buy a shipping label; an order placed with "make shipping fail" never gets one."""
    if fail:
        # Retried 2 s later rather than after the 15 s-plus-jitter backoff, so the demo's
        # failure path ends within seconds.
        raise inngest.RetryAfterError(
            f"the carrier has no label for {allocation['quantity']} x {allocation['sku']} "
            "(the order asked shipping to fail)",
            timedelta(seconds=2),
        )
    tracking_number = f"TRK{order_id:08d}"
    Order.objects.filter(pk=order_id).update(tracking_number=tracking_number)
    return tracking_number


@client.create_function(
    fn_id="process-order",
    trigger=inngest.TriggerEvent(event="shop/order.placed"),
    retries=1,  # one retry, so a shipment that keeps failing fails the run soon
)
def process_order(ctx: inngest.Context) -> dict[str, Any]:
    """Charge, allocate and ship; register each cleanup as soon as there is something to undo."""
    data = ctx.event.data
    order_id = data["order_id"]
    charge = ctx.step.run("charge-card", charge_card, order_id, data["amount"], ctx.run_id)

    # Starts when this run ends, unless cancelled below: so only if a later step fails for good.
    # Written with the next step's transaction; docs/defer.md shows how to commit it with the
    # charge itself, by calling ctx.defer inside charge-card.
    refund = ctx.defer(
        "refund-if-failed",
        function=refund_payment,
        data={"charge_id": charge["id"], "amount": charge["amount"]},
    )

    allocation = ctx.step.run(
        "allocate-inventory",
        allocate_inventory,
        order_id,
        data["sku"],
        data["quantity"],
        ctx.run_id,
    )

    release = ctx.defer(
        "release-if-failed",
        function=release_inventory,
        data={"sku": data["sku"], "quantity": data["quantity"]},
    )

    tracking_number = ctx.step.run(
        "create-shipment", create_shipment, order_id, allocation, data.get("fail_shipment", False)
    )

    # Everything succeeded: neither cleanup runs.
    refund.cancel()
    release.cancel()
    return {"status": "shipped", "charge_id": charge["id"], "tracking_number": tracking_number}


# -- Waiting for an event: onboarding ------------------------------------------------------


def activation_timeout() -> str:
    """Return how long onboarding waits for the user to activate (SHOP_ACTIVATION_TIMEOUT)."""
    return getattr(settings, "SHOP_ACTIVATION_TIMEOUT", DEFAULT_ACTIVATION_TIMEOUT)


@client.create_function(
    fn_id="onboarding",
    trigger=inngest.TriggerEvent(event="user/created"),
)
def onboarding(ctx: inngest.Context) -> str:
    """Wait for the new user to activate: send tips if they do, a nudge if they do not in time."""
    email = ctx.event.data["email"]
    # Resumed by the first app/user.activated sent after the wait began whose data.user_id is
    # this user/created event's; meanwhile the run is WAITING and holds no worker.
    activated = ctx.step.wait_for_event(
        "wait-for-activation",
        event="app/user.activated",
        match="data.user_id",
        timeout=activation_timeout(),
    )
    if activated is None:
        body = "Activate your account to get started."
        ctx.step.run("send-nudge", deliver_email, email, NUDGE_SUBJECT, body, ctx.run_id)
        return "nudged"
    body = "Thanks for activating your account. Here is how to make the most of it."
    ctx.step.run("send-tips", deliver_email, email, TIPS_SUBJECT, body, ctx.run_id)
    return "activated"


# -- Invoking a function: quote-order calls price-order ------------------------------------


def price_for(sku: str, quantity: int) -> dict[str, Any]:
    """Return the price of `quantity` units of `sku`, with the volume discount."""
    if quantity > MAX_PRICED_QUANTITY:
        # Retrying cannot make the quantity smaller: fail the step, and the run, at once.
        raise inngest.NonRetriableError(
            f"we price at most {MAX_PRICED_QUANTITY} mugs at a time, not {quantity}"
        )
    discount = DISCOUNT_PERCENT if quantity >= DISCOUNT_FROM_QUANTITY else 0
    subtotal = quantity * UNIT_PRICE_CENTS
    return {
        "sku": sku,
        "quantity": quantity,
        "unit_price": UNIT_PRICE_CENTS,
        "discount_percent": discount,
        "total": subtotal * (100 - discount) // 100,
    }


@client.create_function(
    fn_id="price-order",
    trigger=inngest.TriggerEvent(event="shop/price.requested"),
)
def price_order(ctx: inngest.Context) -> dict[str, Any]:
    """Price some mugs, for quote-order's invoke or for a shop/price.requested event."""
    data = ctx.event.data
    return ctx.step.run("compute-price", price_for, data["sku"], data["quantity"])


def save_quote(quote_id: int, price: dict[str, Any], run_id: str) -> int:
    """Record the price price-order worked out on the quote."""
    Quote.objects.filter(pk=quote_id).update(
        total=price["total"], discount_percent=price["discount_percent"], run_id=run_id
    )
    return price["total"]


def refuse_quote(quote_id: int, reason: str, run_id: str) -> str:
    """Record on the quote why price-order would not price it."""
    Quote.objects.filter(pk=quote_id).update(refusal=reason[:255], run_id=run_id)
    return reason


@client.create_function(
    fn_id="quote-order",
    trigger=inngest.TriggerEvent(event="shop/quote.requested"),
)
def quote_order(ctx: inngest.Context) -> dict[str, Any]:
    """Invoke price-order for the quote's mugs and record the price it returns."""
    data = ctx.event.data
    try:
        # price-order runs as a run of its own (this run is its parent); this run waits for
        # it without holding a worker, and gets its return value.
        price = ctx.step.invoke(
            "price-order",
            function=price_order,
            data={"sku": data["sku"], "quantity": data["quantity"]},
            timeout="1m",
        )
    except inngest.NonRetriableError as exc:
        # The invoked run failed (after its own retries), or did not finish within a minute.
        reason = ctx.step.run("save-refusal", refuse_quote, data["quote_id"], str(exc), ctx.run_id)
        return {"status": "refused", "reason": reason}
    ctx.step.run("save-quote", save_quote, data["quote_id"], price, ctx.run_id)
    return {"status": "priced", **price}


# -- Cancelling on an event: cart-reminder -------------------------------------------------


def cart_reminder_delay() -> str:
    """Return how long cart-reminder sleeps before emailing (SHOP_CART_REMINDER_DELAY)."""
    return getattr(settings, "SHOP_CART_REMINDER_DELAY", DEFAULT_CART_REMINDER_DELAY)


@client.create_function(
    fn_id="cart-reminder",
    trigger=inngest.TriggerEvent(event="shop/cart.abandoned"),
    # An order placed for this cart after it was abandoned cancels the run, asleep or not:
    # `event` is this run's shop/cart.abandoned, `async` the shop/order.placed.
    cancel=[
        inngest.Cancel(event="shop/order.placed", if_exp="event.data.cart_id == async.data.cart_id")
    ],
)
def cart_reminder(ctx: inngest.Context) -> str:
    """Sleep a while, then remind the shopper of their cart, unless they ordered it meanwhile."""
    data = ctx.event.data
    ctx.step.sleep("wait-before-reminding", cart_reminder_delay())
    quantity = data["quantity"]
    subject = f"You left {quantity} mug{'s' if quantity != 1 else ''} in your cart"
    body = f"{subject}\n\nCart #{data['cart_id']} is still waiting for you."
    return ctx.step.run("send-reminder", deliver_email, data["email"], subject, body, ctx.run_id)


# -- Flow control: one small function per option -------------------------------------------
# The home page sends each a burst of events at once; the runs' statuses and notes show what
# the option did, on the page and in the admin (Function runs, filter "flow control").


def work(label: str) -> str:
    """Pretend to work for a moment, holding the run's concurrency slot."""
    time.sleep(FLOW_WORK_SECONDS)
    return label


@client.create_function(
    fn_id="export-account-data",
    trigger=inngest.TriggerEvent(event="shop/export.requested"),
    # One export at a time per user; other users' exports run beside it.
    concurrency=[inngest.Concurrency(limit=1, key="event.data.user_id")],
)
def export_account_data(ctx: inngest.Context) -> str:
    """Build a user's data export, one per user at a time."""
    data = ctx.event.data
    return ctx.step.run("build-export", work, f"export {data['n']} of user {data['user_id']}")


@client.create_function(
    fn_id="notify-restock",
    trigger=inngest.TriggerEvent(event="shop/stock.restocked"),
    # At most 3 starts per 6 seconds: one every 2 s. Runs beyond that wait; none is dropped.
    throttle=inngest.Throttle(limit=3, period="6s"),
)
def notify_restock(ctx: inngest.Context) -> str:
    """Tell the subscribers of a SKU it is back, at a pace the mail provider accepts."""
    return f"notified the subscribers of {ctx.event.data['sku']}"


@client.create_function(
    fn_id="send-password-reset",
    trigger=inngest.TriggerEvent(event="shop/reset.requested"),
    # At most 2 per minute per address; the others are skipped, not queued.
    rate_limit=inngest.RateLimit(limit=2, period="1m", key="event.data.email"),
)
def send_password_reset(ctx: inngest.Context) -> str:
    """Send a password-reset link, but not a flood of them to one address."""
    return f"reset link for {ctx.event.data['email']}"


def debounce_period() -> str:
    """Return how long reindex-product waits for edits to stop (SHOP_DEBOUNCE_PERIOD)."""
    return getattr(settings, "SHOP_DEBOUNCE_PERIOD", DEFAULT_DEBOUNCE_PERIOD)


@client.create_function(
    fn_id="reindex-product",
    trigger=inngest.TriggerEvent(event="shop/product.edited"),
    # One run per SKU once the edits have stopped for the period, with the last edit's event.
    debounce=inngest.Debounce(period=debounce_period(), key="event.data.sku", timeout="1m"),
)
def reindex_product(ctx: inngest.Context) -> str:
    """Reindex a product once a burst of edits has settled."""
    data = ctx.event.data
    return ctx.step.run("reindex", lambda: f"indexed {data['sku']} at revision {data['revision']}")


@client.create_function(
    fn_id="pack-order",
    trigger=inngest.TriggerEvent(event="shop/order.paid"),
    # One packer, so a queue forms; express orders are queued as if paid a minute earlier.
    concurrency=[inngest.Concurrency(limit=1)],
    priority=inngest.Priority(run="event.data.express ? 60 : 0"),
)
def pack_order(ctx: inngest.Context) -> str:
    """Pack a paid order; express orders jump the queue."""
    data = ctx.event.data
    kind = "express" if data["express"] else "standard"
    return ctx.step.run("pack", work, f"packed order {data['order']} ({kind})")


@client.create_function(
    fn_id="rebuild-recommendations",
    trigger=inngest.TriggerEvent(event="shop/cart.updated"),
    # While one rebuild of a user's recommendations is queued or running, the next is skipped.
    singleton=inngest.Singleton(key="event.data.user_id", mode="skip"),
)
def rebuild_recommendations(ctx: inngest.Context) -> str:
    """Rebuild a user's recommendations, never twice at once."""
    return ctx.step.run("rebuild", work, f"recommendations of user {ctx.event.data['user_id']}")


@client.create_function(
    fn_id="capture-payment",
    trigger=inngest.TriggerEvent(event="shop/payment.authorized"),
    # A payment provider may deliver a webhook more than once: one capture per payment, 24 h.
    idempotency="event.data.payment_id",
)
def capture_payment(ctx: inngest.Context) -> str:
    """Capture an authorized payment exactly once however often its webhook arrives."""
    return f"captured {ctx.event.data['payment_id']}"


# Registered with the rest: the async example.
from . import async_examples  # noqa: E402, F401
