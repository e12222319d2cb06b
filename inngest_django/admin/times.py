"""How the admin writes times: moments to the millisecond, spans, and "in 12 s" or "3 min ago"."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

# Tick steps of a time axis in milliseconds: 1, 2 and 5 times a power of ten, then minutes,
# hours and days, so labels land on round numbers at any zoom.
_TICK_STEPS_MS = [
    *(factor * 10**power for power in range(0, 5) for factor in (1, 2, 5)),
    60_000,
    120_000,
    300_000,
    600_000,
    1_800_000,
    3_600_000,
    7_200_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
]


def local(value: datetime) -> datetime:
    """Return an aware datetime in the current time zone (naive ones are shown as they are)."""
    return timezone.localtime(value) if timezone.is_aware(value) else value


def moment_text(value: datetime | None) -> str:
    """Return a moment as "2024-05-01 10:00:03.042" in the current time zone, or ""."""
    if value is None:
        return ""
    moment = local(value)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"


def clock_text(value: datetime) -> str:
    """Return the time of day only, as "10:00:03.042", for labels next to a full moment."""
    moment = local(value)
    return f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"


def span_text(seconds: float) -> str:
    """Return a length of time as "850 ms", "12.4 s", "3 min 5 s", "2 h 10 min" or "3 d 4 h"."""
    seconds = abs(seconds)
    if seconds < 1:
        return gettext("%(ms)d ms") % {"ms": round(seconds * 1000)}
    if seconds < 10:
        return gettext("%(s)s s") % {"s": f"{seconds:.2f}".rstrip("0").rstrip(".")}
    if seconds < 60:
        return gettext("%(s)s s") % {"s": f"{seconds:.1f}".rstrip("0").rstrip(".")}
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        if rest:
            return gettext("%(m)d min %(s)d s") % {"m": minutes, "s": rest}
        return gettext("%(m)d min") % {"m": minutes}
    if whole < 86400:
        hours, rest = divmod(whole, 3600)
        if rest // 60:
            return gettext("%(h)d h %(m)d min") % {"h": hours, "m": rest // 60}
        return gettext("%(h)d h") % {"h": hours}
    days, rest = divmod(whole, 86400)
    if rest // 3600:
        return gettext("%(d)d d %(h)d h") % {"d": days, "h": rest // 3600}
    return gettext("%(d)d d") % {"d": days}


def duration_text(start: datetime | None, end: datetime | None) -> str | None:
    """Return the time from `start` to `end` as span_text does, or None if either is missing."""
    if start is None or end is None:
        return None
    return span_text((end - start).total_seconds())


def relative_text(value: datetime, now: datetime | None = None) -> str:
    """Return how far `value` is from now: "in 12 s", "3 min ago", or "now" within 1 ms."""
    now = now or timezone.now()
    seconds = (value - now).total_seconds()
    if abs(seconds) < 0.001:
        return gettext("now")
    if seconds > 0:
        return gettext("in %(span)s") % {"span": _rounded_span(seconds)}
    return gettext("%(span)s ago") % {"span": _rounded_span(seconds)}


def _rounded_span(seconds: float) -> str:
    """Return a span to one unit ("12 s", "3 min"): relative times need no more precision."""
    seconds = abs(seconds)
    if seconds < 1:
        return gettext("%(ms)d ms") % {"ms": round(seconds * 1000)}
    if seconds < 60:
        return gettext("%(s)d s") % {"s": round(seconds)}
    if seconds < 3600:
        return gettext("%(m)d min") % {"m": round(seconds / 60)}
    if seconds < 172800:
        return gettext("%(h)d h") % {"h": round(seconds / 3600)}
    return gettext("%(d)d d") % {"d": round(seconds / 86400)}


def offset_text(milliseconds: float) -> str:
    """Return an offset on a run's axis as "+0 ms", "+250 ms", "+1.5 s" or "+2 min"."""
    if milliseconds == 0:
        return "+0 ms"
    return "+" + span_text(milliseconds / 1000)


def tick_step_ms(span: timedelta, *, most: int = 8) -> int:
    """Return the smallest round tick step that puts at most `most` ticks on `span`."""
    span_ms = max(span.total_seconds() * 1000, 1.0)
    for step in _TICK_STEPS_MS:
        if span_ms / step <= most:
            return step
    return math.ceil(span_ms / most / 86_400_000) * 86_400_000


def ticks(span: timedelta, *, most: int = 8) -> list[tuple[float, str]]:
    """Return (percent of the span, label) for round offsets from 0 along a span."""
    step = tick_step_ms(span, most=most)
    span_ms = max(span.total_seconds() * 1000, 1.0)
    marks = []
    offset = 0
    # A label starting past 92% would run off the axis' right end.
    while offset <= span_ms * 0.92:
        marks.append((round(offset / span_ms * 100, 3), offset_text(offset)))
        offset += step
    return marks


def moment_html(value: datetime | None) -> SafeString | None:
    """Return a moment to the millisecond in a <time>, with how long ago it was as tooltip."""
    if value is None:
        return None
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        relative_text(value),
        moment_text(value),
    )


def moment_column(field: str, description: Any) -> Callable[[Any, Any], Any]:
    """Return an admin column or read-only field showing the datetime `field` to the ms."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> Any:
        value = moment_html(getattr(obj, field))
        return model_admin.get_empty_value_display() if value is None else value

    return column
