"""The metrics page: runs per minute, durations, backlog and slots, overall or per function."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import metrics
from ..models import FunctionRun
from ..registry import default_registry
from .charts import Series, line_chart

# The windows the page offers, in minutes.
WINDOWS = (15, 60, 180, 360)
DEFAULT_WINDOW = 60
# How often the page reloads itself when "refresh" is ticked.
REFRESH_SECONDS = 30


def seconds_text(value: float | None) -> str:
    """Return a duration as "0.412 s" or "-" for none."""
    return "-" if value is None else f"{value:.3f} s"


def function_choices(since: Any) -> list[str]:
    """Return the registered functions' slugs and those with runs created since `since`, sorted."""
    # Bounded by the window (the created_at index), not a DISTINCT over every run ever kept.
    recent = FunctionRun.objects.order_by().filter(created_at__gte=since)
    slugs = set(recent.values_list("function_id", flat=True).distinct())
    return sorted(slugs | {function.id for function in default_registry})


def charts(figures: metrics.Figures) -> list[Any]:
    """Return the page's two SVG charts: runs per minute, and p50/p95 duration per minute."""
    labels = [timezone.localtime(minute.at).strftime("%H:%M") for minute in figures.minutes]
    minutes = figures.minutes
    runs = line_chart(
        gettext("Runs per minute"),
        labels,
        [
            Series(gettext("started"), "#0d6efd", [float(m.started) for m in minutes]),
            Series(gettext("completed"), "#198754", [float(m.completed) for m in minutes]),
            Series(gettext("failed"), "#dc3545", [float(m.failed) for m in minutes]),
        ],
    )
    durations = line_chart(
        gettext("Duration of runs finished, per minute"),
        labels,
        [
            Series("p50", "#6f42c1", [m.p50 for m in minutes]),
            Series("p95", "#d9730d", [m.p95 for m in minutes]),
        ],
        unit=" s",
    )
    return [runs, durations]


def function_rows(figures: metrics.Figures, window: int, url: str) -> list[dict[str, Any]]:
    """Return a row per function with runs in the window or waiting: the overall page's table."""
    rows = []
    now = figures.now
    # The chart's window, from the start of its first minute, so the rows add up to its totals.
    found = metrics.figures_by_function(now, now - figures.since)
    for slug, figures in sorted(found.items()):
        waited = None if figures.oldest_due is None else (now - figures.oldest_due).total_seconds()
        rows.append(
            {
                "slug": slug,
                "url": f"{url}?{urlencode({'function': slug, 'minutes': window})}",
                "started": figures.started,
                "completed": figures.completed,
                "failed": figures.failed,
                "p50": seconds_text(metrics.percentile(figures.durations, 0.5)),
                "p95": seconds_text(metrics.percentile(figures.durations, 0.95)),
                "queued": figures.queued,
                "due": figures.due,
                "oldest_due": seconds_text(None if waited is None else max(waited, 0.0)),
            }
        )
    return rows


def metrics_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Render the metrics page; `?function=` narrows it to one function, `?minutes=` the window."""
    if not request.user.has_perm("inngest_django.view_functionrun"):
        raise PermissionDenied
    function_id = request.GET.get("function") or None
    if function_id is not None and "\x00" in function_id:
        # PostgreSQL refuses NUL in text; no function has one in its slug.
        function_id = None
    try:
        window = int(request.GET.get("minutes", DEFAULT_WINDOW))
    except ValueError:
        window = DEFAULT_WINDOW
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    now = timezone.now()
    figures = metrics.figures(now, minutes=window, function_id=function_id)
    opts = model_admin.opts
    page_url = reverse(f"{model_admin.admin_site.name}:{opts.app_label}_metrics")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Metrics"),
        "subtitle": function_id,
        "opts": opts,
        "app_label": opts.app_label,
        "figures": figures,
        "charts": charts(figures),
        "function_id": function_id or "",
        "functions": sorted(
            {*function_choices(figures.since), *([function_id] if function_id else [])}
        ),
        "window": window,
        "windows": WINDOWS,
        "p50": seconds_text(figures.p50),
        "p95": seconds_text(figures.p95),
        "oldest_due": seconds_text(figures.oldest_due_seconds),
        "changelist_url": reverse(
            f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
        ),
        "sample": metrics.DURATION_SAMPLE,
        # A meta refresh, not a script: the page reloads with its filters every REFRESH seconds.
        "refresh": REFRESH_SECONDS if request.GET.get("refresh") else None,
        "refresh_seconds": REFRESH_SECONDS,
        # Overall, a line per function, each linking to its own figures.
        "function_rows": [] if function_id else function_rows(figures, window, page_url),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/inngest_django/metrics.html", context)
