"""Tables the demo functions write to from inside their steps, and the orders they process."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Product(models.Model):
    """A product brought in by an import."""

    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return self.sku


class ImageCopy(models.Model):
    """One product image "copied" to storage by the import-product-images function."""

    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="images"
    )
    source_url = models.URLField(_("source URL"), max_length=500)
    copied_to = models.CharField(_("copied to"), max_length=500)
    run_id = models.CharField(_("run id"), max_length=26, help_text=_("The run that copied it."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("image copy")
        verbose_name_plural = _("image copies")

    def __str__(self) -> str:
        return self.copied_to


class EmailLog(models.Model):
    """An email a function sent, kept so the demo page can show it."""

    to = models.EmailField(_("to"))
    subject = models.CharField(_("subject"), max_length=200)
    run_id = models.CharField(_("run id"), max_length=26, help_text=_("The run that sent it."))
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("email log entry")
        verbose_name_plural = _("email log")

    def __str__(self) -> str:
        return f"{self.subject} -> {self.to}"


class Heartbeat(models.Model):
    """One row per tick of the heartbeat cron."""

    run_id = models.CharField(_("run id"), max_length=26)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"heartbeat {self.recorded_at:%H:%M}"


class StockItem(models.Model):
    """How many of one SKU the shop has on hand."""

    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    on_hand = models.IntegerField(_("on hand"), default=0)

    class Meta:
        verbose_name = _("stock item")
        verbose_name_plural = _("stock")

    def __str__(self) -> str:
        return f"{self.sku}: {self.on_hand}"


class Order(models.Model):
    """An order placed from the demo page; process-order charges, allocates and ships it."""

    email = models.EmailField(_("email"))
    sku = models.CharField(_("SKU"), max_length=64)
    quantity = models.PositiveIntegerField(_("quantity"))
    amount = models.PositiveIntegerField(_("amount (cents)"))
    fail_shipment = models.BooleanField(
        _("make shipping fail"),
        default=False,
        help_text=_("The demo's create-shipment step fails for this order, for good."),
    )
    event_id = models.CharField(
        _("event id"), max_length=26, blank=True, help_text=_("The shop/order.placed event.")
    )
    tracking_number = models.CharField(
        _("tracking number"), max_length=32, blank=True, help_text=_("Set once it shipped.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return f"order {self.pk}"


class Charge(models.Model):
    """The card payment of an order, made by process-order's charge-card step."""

    order = models.OneToOneField(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="charge"
    )
    charge_id = models.CharField(_("charge id"), max_length=32, unique=True)
    amount = models.PositiveIntegerField(_("amount (cents)"))
    run_id = models.CharField(_("run id"), max_length=26, help_text=_("The run that charged."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("charge")
        verbose_name_plural = _("charges")

    def __str__(self) -> str:
        return self.charge_id


class Refund(models.Model):
    """A refund of a charge, issued by the deferred refund-payment function."""

    charge = models.ForeignKey(
        Charge, verbose_name=_("charge"), on_delete=models.CASCADE, related_name="refunds"
    )
    amount = models.PositiveIntegerField(_("amount (cents)"))
    run_id = models.CharField(_("run id"), max_length=26, help_text=_("The run that refunded."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")

    def __str__(self) -> str:
        return f"refund of {self.charge}"


class Allocation(models.Model):
    """Stock set aside for an order by process-order's allocate-inventory step."""

    order = models.OneToOneField(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="allocation"
    )
    sku = models.CharField(_("SKU"), max_length=64)
    quantity = models.PositiveIntegerField(_("quantity"))
    run_id = models.CharField(
        _("run id"), max_length=26, unique=True, help_text=_("The run that allocated.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class StockRelease(models.Model):
    """Allocated stock put back on hand by the deferred release-inventory function."""

    allocation = models.ForeignKey(
        Allocation, verbose_name=_("allocation"), on_delete=models.CASCADE, related_name="releases"
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    run_id = models.CharField(_("run id"), max_length=26, help_text=_("The run that released."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("stock release")
        verbose_name_plural = _("stock releases")

    def __str__(self) -> str:
        return f"{self.quantity} x {self.allocation.sku} released"


class Account(models.Model):
    """A user who signed up on the demo page; the onboarding function waits for its activation."""

    email = models.EmailField(_("email"))
    event_id = models.CharField(
        _("event id"), max_length=26, blank=True, help_text=_("The user/created event.")
    )
    activated_at = models.DateTimeField(
        _("activated at"),
        null=True,
        blank=True,
        help_text=_("Set when app/user.activated was sent."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")

    def __str__(self) -> str:
        return self.email


class Cart(models.Model):
    """A cart left on the demo page; cart-reminder emails about it unless it is ordered first."""

    email = models.EmailField(_("email"))
    quantity = models.PositiveIntegerField(_("quantity"))
    event_id = models.CharField(
        _("event id"), max_length=26, blank=True, help_text=_("The shop/cart.abandoned event.")
    )
    order = models.OneToOneField(
        Order,
        verbose_name=_("order"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cart",
        help_text=_("The order placed for this cart; its event cancels the reminder."),
    )
    created_at = models.DateTimeField(_("abandoned at"), auto_now_add=True)

    class Meta:
        verbose_name = _("cart")
        verbose_name_plural = _("carts")

    def __str__(self) -> str:
        return f"cart {self.pk}"


class Quote(models.Model):
    """A price asked for on the demo page; quote-order invokes price-order to work it out."""

    sku = models.CharField(_("SKU"), max_length=64)
    quantity = models.PositiveIntegerField(_("quantity"))
    event_id = models.CharField(
        _("event id"), max_length=26, blank=True, help_text=_("The shop/quote.requested event.")
    )
    total = models.PositiveIntegerField(
        _("total (cents)"), null=True, blank=True, help_text=_("Set once price-order priced it.")
    )
    discount_percent = models.PositiveIntegerField(_("discount (%)"), null=True, blank=True)
    refusal = models.CharField(
        _("refusal"),
        max_length=255,
        blank=True,
        help_text=_("Why price-order refused to price it, if it did."),
    )
    run_id = models.CharField(
        _("run id"), max_length=26, blank=True, help_text=_("The quote-order run that saved it.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")

    def __str__(self) -> str:
        return f"quote {self.pk}"
