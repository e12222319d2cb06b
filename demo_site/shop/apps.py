"""The demo shop: products whose images are copied, signup emails and a heartbeat cron."""

from __future__ import annotations

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "demo_site.shop"
    label = "shop"
    verbose_name = "Demo shop"
    default_auto_field = "django.db.models.BigAutoField"
