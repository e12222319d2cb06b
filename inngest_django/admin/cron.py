"""Admins of the engine's bookkeeping rows: cron schedules and idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib import admin
from django.http import HttpRequest

from ..models import CronSchedule, IdempotencyKey
from ..payload_access import payloads_restricted
from .lookups import NulSafeLookupsMixin
from .readonly import ReadOnlyAdminMixin


@admin.register(CronSchedule)
class CronScheduleAdmin(ReadOnlyAdminMixin, NulSafeLookupsMixin, admin.ModelAdmin):
    list_display = ("function_id", "cron", "next_tick_at", "last_tick_at")
    search_fields = ("function_id",)
    ordering = ("function_id", "cron")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, NulSafeLookupsMixin, admin.ModelAdmin):
    list_display = ("function_id", "key", "expires_at")
    search_fields = ("=key", "=function_id")
    ordering = ("-expires_at",)

    def get_search_fields(self, request: HttpRequest) -> Sequence[str]:
        # A key is computed from event data: with encryption on, no search may probe it.
        return ("=function_id",) if payloads_restricted() else self.search_fields
