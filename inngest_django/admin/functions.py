"""The functions page: each registered function, its options and its runs of the last 24 hours."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel

from ..enums import RunStatus
from ..functions import DeferredFunction, Function
from ..models import FunctionRun, paused_function_ids
from ..models.pauses import PAUSE_PERMISSION
from ..registry import default_registry
from .display import STATUS_COLOURS

# The window the counts cover; the run list's "created" filter offers the same one.
WINDOW = timedelta(hours=24)
WINDOW_PARAM = "24h"


@dataclass
class StatusCount:
    """How many runs of one function ended up in one status, with a link to them."""

    status: str
    label: str
    count: int
    url: str

    @property
    def colour(self) -> str:
        return STATUS_COLOURS.get(self.status, "#6c757d")


@dataclass
class FunctionRow:
    """One line of the functions page."""

    slug: str
    name: str
    kind: str
    triggers: list[str]
    options: list[str]
    runs_url: str
    counts: list[StatusCount] = field(default_factory=list)
    registered: bool = True
    # Set by functions_view: the function's own page, and its pause or resume endpoint.
    paused: bool = False
    page_url: str = ""
    toggle_url: str = ""

    @property
    def total(self) -> int:
        return sum(count.count for count in self.counts)


def option_text(name: str, value: Any) -> str:
    """Return one option as "throttle: limit=20, period=1m" (pydantic models field by field)."""
    if isinstance(value, BaseModel):
        fields = value.model_dump(exclude_none=True, by_alias=True)
        return f"{name}: " + ", ".join(f"{key}={item}" for key, item in fields.items())
    return f"{name}: {value}"


def function_kind(function: Function) -> str:
    """Return "deferred", "django task", "cron" or "event"."""
    if isinstance(function, DeferredFunction):
        return gettext("deferred")
    if not function.triggers:
        # Only a django.tasks task's function has no trigger: its backend's enqueue starts it.
        return gettext("django task")
    if function.cron_triggers and not function.event_triggers:
        return gettext("cron")
    return gettext("event")


def trigger_texts(function: Function) -> list[str]:
    """Return each trigger as "event shop/order.placed if <expr>" or "cron 0 9 * * 1"."""
    texts = []
    for trigger in function.event_triggers:
        text = gettext("event %(name)s") % {"name": trigger.event}
        if trigger.expression:
            text += " " + gettext("if %(expression)s") % {"expression": trigger.expression}
        texts.append(text)
    texts.extend(gettext("cron %(cron)s") % {"cron": cron.cron} for cron in function.cron_triggers)
    return texts


def option_texts(function: Function) -> list[str]:
    """Return the function's retries, cancel rules, timeouts and flow-control options."""
    texts = [gettext("retries: %(count)d") % {"count": function.retries}]
    texts.extend(option_text("cancel", rule) for rule in function.cancel)
    if function.timeouts is not None:
        texts.append(option_text("timeouts", function.timeouts))
    flow = function.flow
    texts.extend(option_text("concurrency", limit) for limit in flow.concurrency)
    for name in ("throttle", "rate_limit", "debounce", "priority", "singleton", "batch"):
        value = getattr(flow, name)
        if value is not None:
            texts.append(option_text("batch_events" if name == "batch" else name, value))
    if flow.idempotency:
        texts.append(option_text("idempotency", flow.idempotency))
    return texts


def counts_by_function(since: Any) -> dict[str, dict[str, int]]:
    """Return {slug: {status: runs}} for runs created since `since`, in one grouped query."""
    rows = (
        FunctionRun.objects.filter(created_at__gte=since)
        .order_by()
        .values_list("function_id", "status")
        .annotate(runs=Count("id"))
    )
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for slug, status, runs in rows:
        counts[slug][status] = runs
    return counts


def function_rows(changelist_url: str) -> list[FunctionRow]:
    """Return a row per registered function, then one per slug with recent runs but no function."""
    counts = counts_by_function(timezone.now() - WINDOW)

    def runs_url(slug: str, **params: str) -> str:
        return f"{changelist_url}?{urlencode({'function': slug, **params})}"

    def status_counts(slug: str) -> list[StatusCount]:
        by_status = counts.get(slug, {})
        return [
            StatusCount(
                status=status.value,
                label=status.label,
                count=by_status[status.value],
                url=runs_url(slug, status=status.value, created=WINDOW_PARAM),
            )
            for status in RunStatus
            if by_status.get(status.value)
        ]

    # A source's functions (django tasks) register on first look-up: their runs look them up.
    unlisted = [slug for slug in sorted(counts) if slug not in default_registry]
    rows = [
        FunctionRow(
            slug=function.id,
            name=function.name,
            kind=function_kind(function),
            triggers=trigger_texts(function),
            options=option_texts(function),
            runs_url=runs_url(function.id),
            counts=status_counts(function.id),
        )
        for function in sorted(default_registry, key=lambda function: function.id)
    ]
    # Runs of a function removed from the code are what an incident often turns up.
    for slug in unlisted:
        rows.append(
            FunctionRow(
                slug=slug,
                name=slug,
                kind=gettext("not registered"),
                triggers=[],
                options=[],
                runs_url=runs_url(slug),
                counts=status_counts(slug),
                registered=False,
            )
        )
    return rows


def with_pause_state(model_admin: Any, rows: list[FunctionRow]) -> list[FunctionRow]:
    """Mark paused rows and give registered ones their page and pause or resume URLs."""
    from .function_page import function_url  # it imports this module's helpers

    paused = paused_function_ids()
    for row in rows:
        row.paused = row.slug in paused
        if row.registered:
            row.page_url = function_url(model_admin, row.slug)
            row.toggle_url = function_url(
                model_admin, row.slug, "resume" if row.paused else "pause"
            )
    return rows


def functions_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Render the functions page for the run admin `model_admin`."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    opts = model_admin.opts
    changelist_url = reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Functions"),
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "rows": with_pause_state(model_admin, function_rows(changelist_url)),
        "can_pause": request.user.has_perm(f"{opts.app_label}.{PAUSE_PERMISSION}"),
        "window": WINDOW,
        "changelist_url": changelist_url,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/inngest_django/functions.html", context)
