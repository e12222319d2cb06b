"""Tables the demo functions write to from inside their steps."""

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
