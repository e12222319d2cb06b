"""Admins of the engine's bookkeeping rows: cron schedules and idempotency keys."""

from __future__ import annotations

from django.contrib import admin

from ..models import CronSchedule, IdempotencyKey
from .readonly import ReadOnlyAdminMixin


@admin.register(CronSchedule)
class CronScheduleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("function_id", "cron", "next_tick_at", "last_tick_at")
    search_fields = ("function_id",)
    ordering = ("function_id", "cron")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("function_id", "key", "expires_at")
    search_fields = ("=key", "=function_id")
    ordering = ("-expires_at",)
