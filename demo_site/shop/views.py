"""The demo's one page: recent runs, and buttons that send each demo event."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

import inngest_django as inngest
from inngest_django.models import FunctionRun

from .inngest_functions import client
from .models import EmailLog, Heartbeat, ImageCopy


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


def home(request: HttpRequest) -> HttpResponse:
    """Show the demo buttons, recent runs and what the functions wrote."""
    return render(
        request,
        "shop/home.html",
        {
            "runs": FunctionRun.objects.order_by("-created_at")[:20],
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
