"""Steering runs from the admin: cancel, rerun and retry, as list actions and run-page buttons."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..enums import FINISHED_STATUSES, RunStatus
from ..exceptions import FunctionNotFoundError
from ..models import FunctionRun
from ..runs import cancel_run, rerun_run, retry_run
from .display import run_id_link_html
from .reports import report_counts

logger = logging.getLogger(__name__)

# FunctionRun's own permissions, one per way of steering runs (see docs/permissions.md).
CANCEL_PERMISSION = "cancel_functionrun"
RERUN_PERMISSION = "rerun_functionrun"
RETRY_PERMISSION = "retry_functionrun"
# A rerun of many runs reports each new run up to this many, then counts the rest.
_LISTED_RERUNS = 10


class RunActionsMixin:
    """Cancel, rerun and retry for FunctionRunAdmin: actions, POST-only views and buttons."""

    actions = ("cancel_runs", "rerun_runs", "retry_runs")

    # -- permissions ---------------------------------------------------------------------------

    def _has_run_permission(self, request: HttpRequest, codename: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")  # type: ignore[attr-defined]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Return True if the user may ask runs to stop (superusers always may)."""
        return self._has_run_permission(request, CANCEL_PERMISSION)

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        """Return True if the user may start runs again from the start."""
        return self._has_run_permission(request, RERUN_PERMISSION)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Return True if the user may queue failed runs again from their failed step."""
        return self._has_run_permission(request, RETRY_PERMISSION)

    # -- urls and buttons ----------------------------------------------------------------------

    def _url_name(self, verb: str) -> str:
        opts = self.opts  # type: ignore[attr-defined]
        return f"{opts.app_label}_{opts.model_name}_{verb}"

    def _run_url(self, verb: str, run_id: str) -> str:
        site = self.admin_site.name  # type: ignore[attr-defined]
        return reverse(f"{site}:{self._url_name(verb)}", args=[quote(run_id)])

    def run_action_urls(self) -> list[URLPattern]:
        """Return the POST endpoints of the run page's buttons."""
        wrap = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path(f"<path:object_id>/{verb}/", wrap(view), name=self._url_name(verb))
            for verb, view in (
                ("cancel", self.cancel_view),
                ("rerun", self.rerun_view),
                ("retry", self.retry_view),
            )
        ]

    def run_button_urls(self, request: HttpRequest, run: FunctionRun) -> dict[str, str]:
        """Return the run page's button URLs, only for what this user may do to this run now."""
        urls = {}
        unfinished = run.status not in FINISHED_STATUSES
        if unfinished and run.cancel_requested_at is None and self.has_cancel_permission(request):
            urls["cancel_run_url"] = self._run_url("cancel", run.pk)
        if self.has_rerun_permission(request):
            urls["rerun_run_url"] = self._run_url("rerun", run.pk)
        if run.status == RunStatus.FAILED and self.has_retry_permission(request):
            urls["retry_run_url"] = self._run_url("retry", run.pk)
        return urls

    def _button_view(
        self,
        request: HttpRequest,
        object_id: str,
        allowed: Callable[[HttpRequest], bool],
        act: Callable[[HttpRequest, list[FunctionRun]], None],
    ) -> HttpResponse:
        if not allowed(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if run is None:
            raise Http404(gettext("No function run has this id."))
        act(request, [run])
        return HttpResponseRedirect(self._run_url("change", run.pk))

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask one run to stop (the "Cancel run" button), then show its page again."""
        return self._button_view(
            request, object_id, self.has_cancel_permission, self.cancel_and_report
        )

    def rerun_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Start one run again from the start (the "Rerun" button), then show its page again."""
        return self._button_view(
            request, object_id, self.has_rerun_permission, self.rerun_and_report
        )

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Queue one failed run again (the "Retry" button), then show its page again."""
        return self._button_view(
            request, object_id, self.has_retry_permission, self.retry_and_report
        )

    # -- actions -------------------------------------------------------------------------------

    @admin.action(description=_("Cancel selected runs"), permissions=["cancel"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet) -> None:
        # function_id for the history entry's label; no waits: nothing here shows them.
        runs = queryset.prefetch_related(None).only("function_id", "status", "cancel_requested_at")
        self.cancel_and_report(request, runs)

    @admin.action(description=_("Rerun selected runs from the start"), permissions=["rerun"])
    def rerun_runs(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.rerun_and_report(request, queryset.prefetch_related(None).only("function_id"))

    @admin.action(description=_("Retry selected failed runs"), permissions=["retry"])
    def retry_runs(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.retry_and_report(request, queryset.prefetch_related(None).only("function_id"))

    # -- doing and reporting -------------------------------------------------------------------

    def cancel_and_report(self, request: HttpRequest, runs: Iterable[FunctionRun]) -> None:
        """Ask each unfinished run to stop through cancel_run, and say what happened."""
        asked = finished = already_asked = 0
        reason = f"admin: cancelled by {request.user.get_username()}"
        for run in runs:
            if run.status in FINISHED_STATUSES:
                finished += 1
            elif run.cancel_requested_at is not None:
                already_asked += 1
            elif cancel_run(run.pk, reason=reason):
                asked += 1
                # The admin's history is where an operator looks for who stopped a run.
                self.log_change(request, run, gettext("Asked the run to stop."))  # type: ignore[attr-defined]
            else:
                # It finished, or someone else asked, since the page was loaded.
                run.refresh_from_db(fields=["status"])
                if run.status in FINISHED_STATUSES:
                    finished += 1
                else:
                    already_asked += 1
        # Literal ngettext calls, so makemessages still finds the strings.
        report_counts(
            self,  # type: ignore[arg-type]
            request,
            (
                (
                    asked,
                    messages.SUCCESS,
                    ngettext(
                        "%(count)d run was asked to stop; a worker cancels it at its next step.",
                        "%(count)d runs were asked to stop; workers cancel them at their next "
                        "step.",
                        asked,
                    ),
                ),
                (
                    already_asked,
                    messages.WARNING,
                    ngettext(
                        "%(count)d run had already been asked to stop.",
                        "%(count)d runs had already been asked to stop.",
                        already_asked,
                    ),
                ),
                (
                    finished,
                    messages.WARNING,
                    ngettext(
                        "%(count)d run had already finished.",
                        "%(count)d runs had already finished.",
                        finished,
                    ),
                ),
            ),
        )

    def rerun_and_report(self, request: HttpRequest, runs: Iterable[FunctionRun]) -> None:
        """Start each run again from the start through rerun_run; name each new run."""
        started: list[tuple[str, str]] = []
        unknown: list[FunctionRun] = []
        for run in runs:
            try:
                rerun_id = rerun_run(run.pk)
            except FunctionNotFoundError:
                unknown.append(run)
                continue
            if rerun_id is None:
                continue  # deleted since the page was loaded: nothing to report on
            started.append((rerun_id, run.pk))
            self.log_change(request, run, gettext("Rerun as %(id)s.") % {"id": rerun_id})  # type: ignore[attr-defined]
            logger.info(
                "Admin rerun run_id=%s rerun_id=%s user=%s",
                run.pk,
                rerun_id,
                request.user.get_username(),
                extra={"run_id": run.pk, "rerun_id": rerun_id, "action": "admin_rerun"},
            )
        for rerun_id, run_id in started[:_LISTED_RERUNS]:
            self.message_user(  # type: ignore[attr-defined]
                request,
                format_html(
                    gettext("Rerun {} started for run {}."),
                    run_id_link_html(rerun_id),
                    run_id_link_html(run_id),
                ),
                messages.SUCCESS,
            )
        more = max(len(started) - _LISTED_RERUNS, 0)
        for run in unknown:
            self.message_user(  # type: ignore[attr-defined]
                request,
                gettext("Run %(id)s was not rerun: its function %(slug)s is no longer registered.")
                % {"id": run.pk, "slug": run.function_id},
                messages.ERROR,
            )
        report_counts(
            self,  # type: ignore[arg-type]
            request,
            (
                (
                    more,
                    messages.SUCCESS,
                    ngettext(
                        "and %(count)d more rerun was started.",
                        "and %(count)d more reruns were started.",
                        more,
                    ),
                ),
            ),
        )

    def retry_and_report(self, request: HttpRequest, runs: Iterable[FunctionRun]) -> None:
        """Queue each FAILED run again through retry_run; count the runs that were not failed."""
        retried: list[FunctionRun] = []
        skipped = 0
        for run in runs:
            if retry_run(run.pk):
                retried.append(run)
                self.log_change(request, run, gettext("Queued again from its failed step."))  # type: ignore[attr-defined]
                logger.info(
                    "Admin retry run_id=%s user=%s",
                    run.pk,
                    request.user.get_username(),
                    extra={"run_id": run.pk, "action": "admin_retry"},
                )
            else:
                skipped += 1
        if len(retried) == 1:
            self.message_user(  # type: ignore[attr-defined]
                request,
                format_html(
                    gettext("Run {} was queued again from its failed step."),
                    run_id_link_html(retried[0].pk),
                ),
                messages.SUCCESS,
            )
        report_counts(
            self,  # type: ignore[arg-type]
            request,
            (
                (
                    len(retried) if len(retried) > 1 else 0,
                    messages.SUCCESS,
                    ngettext(
                        "%(count)d run was queued again from its failed step.",
                        "%(count)d runs were queued again from their failed steps.",
                        len(retried),
                    ),
                ),
                (
                    skipped,
                    messages.WARNING,
                    ngettext(
                        "%(count)d run was not failed and was skipped.",
                        "%(count)d runs were not failed and were skipped.",
                        skipped,
                    ),
                ),
            ),
        )
