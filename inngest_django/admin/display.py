"""HTML pieces the admin pages share: status badges, JSON, errors, links, durations."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.contrib.admin.utils import quote
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..enums import DeferStatus, RunStatus
from ..models import FunctionRun

# Badge colours by value; run, step and defer statuses share the names they have in common, and
# wait outcomes have names of their own.
STATUS_COLOURS = {
    "QUEUED": "#6c757d",
    "RUNNING": "#0d6efd",
    "SLEEPING": "#6f42c1",
    "WAITING": "#0a8ea0",
    "COMPLETED": "#198754",
    "ERRORED": "#d9730d",
    "RETRYING": "#e8590c",
    "FAILED": "#dc3545",
    "CANCELLED": "#8a6d3b",
    "SKIPPED": "#adb5bd",
    "PENDING": "#b08800",
    "SCHEDULED": "#20c997",
    "REJECTED": "#a61e4d",
    "EVENT": "#198754",
    "FINISHED": "#198754",
    "TIMEOUT": "#d9730d",
    "RUN_ENDED": "#adb5bd",
}

_PRE_STYLE = "white-space: pre-wrap; max-height: 24em; overflow: auto; margin: 0;"
# Spans, not divs: a note sits inside the change page's <div class="readonly">.
NOTE_HTML = (
    '<span style="display: block; font-size: 11px; color: var(--body-quiet-color);">{}</span>'
)
LINE_HTML = '<span style="display: block;">{}</span>'

_Obj = TypeVar("_Obj")


def none_as_empty(method: Callable[[Any, _Obj], Any]) -> Callable[[Any, _Obj], Any]:
    """Show the admin's empty value for None, which change pages would print as "None"."""

    @functools.wraps(method)
    def display(model_admin: Any, obj: _Obj) -> Any:
        value = method(model_admin, obj)
        return model_admin.get_empty_value_display() if value is None else value

    return display


def status_badge_html(value: str, label: str) -> SafeString:
    """Return a coloured badge for a run or step status."""
    return format_html(
        '<span style="background: {}; color: #fff; padding: 1px 6px; border-radius: 8px; '
        'font-size: 11px; white-space: nowrap;">{}</span>',
        STATUS_COLOURS.get(value, "#6c757d"),
        label,
    )


def json_html(value: Any) -> SafeString:
    """Return a JSON value pretty-printed in an escaped <pre>."""
    text = json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder)
    return format_html('<pre style="{}">{}</pre>', _PRE_STYLE, text)


def error_html(error: Any) -> SafeString:
    """Return a stored error as its name and message over the stack in a <pre>."""
    if not isinstance(error, dict):
        return json_html(error)
    return format_html(
        '<strong>{}</strong>: {}<pre style="{}">{}</pre>',
        error.get("name", "Error"),
        error.get("message", ""),
        _PRE_STYLE,
        error.get("stack", ""),
    )


def run_link_html(run: FunctionRun) -> SafeString:
    """Return a link to a run's admin page, labelled with its id."""
    return run_id_link_html(run.pk)


def run_id_link_html(run_id: str) -> SafeString:
    """Return a link to the admin page of the run with this id, without loading the run."""
    url = reverse("admin:inngest_django_functionrun_change", args=[quote(run_id)])
    return format_html('<a href="{}">{}</a>', url, run_id)


def defer_link_html(intent_pk: int, defer_id: str) -> SafeString:
    """Return a link to a defer's admin page, labelled with its defer id."""
    url = reverse("admin:inngest_django_deferintent_change", args=[quote(intent_pk)])
    return format_html('<a href="{}">{}</a>', url, defer_id)


def deferred_run_html(run_id: str | None, run_status: str | None, defer_status: str) -> Any:
    """Return a link to the run a defer started, "not started yet", or None."""
    if run_id is not None:
        return format_html("{} {}", run_id_link_html(run_id), RunStatus(run_status).label)
    if defer_status == DeferStatus.SCHEDULED:
        # The parent finished, but the worker's relay has not turned the outbox row into a run.
        return _("not started yet")
    return None


def event_id_link_html(event_id: str, label: Any = None) -> SafeString:
    """Return a link to the admin page of the event with this id, labelled `label` or the id."""
    url = reverse("admin:inngest_django_event_change", args=[quote(event_id)])
    return format_html('<a href="{}">{}</a>', url, event_id if label is None else label)


def key_text(key: str) -> str | None:
    """Return a singleton or debounce key; "-" is what a function without a key expression uses."""
    if not key:
        return None
    return gettext("- (no key: one for the whole function)") if key == "-" else key


def notes_html(notes: Sequence[Any]) -> SafeString:
    """Return short notes, one per line, in the admin's quiet help style."""
    return format_html_join("\n", NOTE_HTML, ((note,) for note in notes))


def experiment_text(experiment: Any) -> str | None:
    """Return a stored experiment reference as "name: variant"."""
    if not isinstance(experiment, dict):
        return None
    return f"{experiment.get('experiment_name')}: {experiment.get('variant')}"
