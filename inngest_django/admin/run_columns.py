"""The run admin's time and retry columns: moments to the ms, attempt, next attempt, last error."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..enums import FINISHED_STATUSES, RunStatus
from ..exceptions import FunctionNotFoundError
from ..models import FunctionRun
from ..registry import default_registry
from .display import none_as_empty
from .payloads import hidden_payload_html, payloads_visible, unreadable_as_note
from .retrying import is_retrying
from .times import moment_column, moment_text, relative_text

# The list shows the start of an error; the run page shows all of it with its stack.
_ERROR_CHARS = 80


def error_summary(error: Any) -> str:
    """Return a stored error as "Name: message"."""
    if not isinstance(error, dict):
        return str(error)
    return f"{error.get('name', 'Error')}: {error.get('message', '')}"


def attempts_allowed(function_id: str) -> int | None:
    """Return how many attempts a step of this function gets, or None if it is not registered."""
    try:
        return default_registry.get(function_id).retries + 1
    except FunctionNotFoundError:
        return None


class RunColumnsMixin:
    """Columns and read-only fields of the run admin that show times and retries."""

    created = moment_column("created_at", _("Created at"))
    started = moment_column("started_at", _("Started at"))
    finished = moment_column("finished_at", _("Finished at"))
    lease_until = moment_column("locked_until", _("Locked until"))
    due_at = moment_column("available_at", _("Available at"))
    cancel_requested = moment_column("cancel_requested_at", _("Cancel requested at"))

    @admin.display(description=_("Attempt"), ordering="attempt")
    @none_as_empty
    def attempt_of(self, run: FunctionRun) -> str | None:
        """Show the attempt of the current step as "2 / 4" while the run is not finished."""
        if run.status in FINISHED_STATUSES:
            return None
        allowed = attempts_allowed(run.function_id)
        if allowed is None:
            return str(run.attempt + 1)
        return f"{run.attempt + 1} / {allowed}"

    @admin.display(description=_("Next attempt"), ordering="available_at")
    @none_as_empty
    def next_attempt(self, run: FunctionRun) -> SafeString | None:
        """Show when a queued run is tried (again): "in 12 s", or "due 3 s ago" if overdue."""
        if run.status != RunStatus.QUEUED or run.available_at is None:
            return None
        now = timezone.now()
        text = relative_text(run.available_at, now)
        if run.available_at <= now:
            text = gettext("due %(when)s") % {"when": text}
        css = "retrying" if is_retrying(run) else "queued"
        return format_html(
            '<time class="next-attempt {}" datetime="{}" title="{}">{}</time>',
            css,
            run.available_at.isoformat(),
            moment_text(run.available_at),
            text,
        )

    @admin.display(description=_("Last error"))
    @none_as_empty
    @unreadable_as_note
    def last_error(self, run: FunctionRun) -> SafeString | None:
        """Show the start of the error of the run's failure or of its last failed attempt."""
        if not run.error:
            return None
        if not payloads_visible(run):
            return hidden_payload_html()
        text = error_summary(run.error)
        return format_html(
            '<span class="last-error" title="{}">{}</span>',
            text,
            Truncator(text).chars(_ERROR_CHARS),
        )
