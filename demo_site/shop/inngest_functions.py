"""The demo's durable functions, after the seed examples; each step writes to the shop's tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from django.core.mail import send_mail

import inngest_django as inngest

from .models import EmailLog, Heartbeat, ImageCopy, Product

client = inngest.Inngest(app_id="shop")

FOLLOW_UP_DELAY = timedelta(seconds=30)


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


def send_email(to: str, subject: str, run_id: str) -> str:
    """Send an email through Django's email backend and log it."""
    # An email cannot be rolled back: if this step failed after send_mail, its retry would
    # send again. Steps are at-least-once for the outside world, exactly-once for the database.
    send_mail(subject, f"Hello {to}!\n\nThis email was sent by run {run_id}.", None, [to])
    EmailLog.objects.create(to=to, subject=subject, run_id=run_id)
    return subject


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
    ctx.step.run("send-the-user-a-signup-email", send_email, email, "Welcome!", ctx.run_id)
    ctx.step.sleep_until("wait-for-the-future", follow_up_at(ctx.event))
    ctx.step.run("do-some-work-in-the-future", send_email, email, "How is it going?", ctx.run_id)


@client.create_function(
    fn_id="record-heartbeat",
    trigger=inngest.TriggerCron(cron="TZ=Europe/Paris * * * * *"),
)
def record_heartbeat(ctx: inngest.Context) -> int:
    """Record one heartbeat row per minute, however many workers run."""
    return ctx.step.run("record-heartbeat", lambda: Heartbeat.objects.create(run_id=ctx.run_id).pk)
