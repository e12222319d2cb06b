"""Admins for the rows the demo functions write."""

from __future__ import annotations

from django.contrib import admin

from .models import EmailLog, Heartbeat, ImageCopy, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "created_at")


@admin.register(ImageCopy)
class ImageCopyAdmin(admin.ModelAdmin):
    list_display = ("copied_to", "product", "run_id", "created_at")


@admin.register(EmailLog)
class EmailLogAdmin(admin.ModelAdmin):
    list_display = ("subject", "to", "run_id", "sent_at")


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("recorded_at", "run_id")
