"""Action reports: one admin message per outcome that happened, with its count."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin
from django.http import HttpRequest


def report_counts(
    model_admin: admin.ModelAdmin, request: HttpRequest, outcomes: Iterable[tuple[int, int, str]]
) -> None:
    """Send each (count, level, message) as a message with its %(count)d filled in, unless 0."""
    for count, level, message in outcomes:
        if count:
            model_admin.message_user(request, message % {"count": count}, level)
