"""Admins for the rows the demo functions write."""

from __future__ import annotations

from django.contrib import admin

from .models import (
    Account,
    Allocation,
    Cart,
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


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    list_display = ("sku", "on_hand")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("pk", "email", "quantity", "amount", "fail_shipment", "tracking_number")
    list_filter = ("fail_shipment",)


@admin.register(Charge)
class ChargeAdmin(admin.ModelAdmin):
    list_display = ("charge_id", "order", "amount", "run_id", "created_at")


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ("charge", "amount", "run_id", "created_at")


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = ("order", "sku", "quantity", "run_id", "created_at")


@admin.register(StockRelease)
class StockReleaseAdmin(admin.ModelAdmin):
    list_display = ("allocation", "quantity", "run_id", "created_at")


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("email", "activated_at", "event_id", "created_at")


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ("pk", "email", "quantity", "order", "event_id", "created_at")


@admin.register(Quote)
class QuoteAdmin(admin.ModelAdmin):
    list_display = ("pk", "quantity", "total", "discount_percent", "refusal", "run_id")
