"""Bulk cancel and bulk rerun ("replay"): runs picked by function, status and time, previewed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..enums import FINISHED_STATUSES, RunStatus
from ..models import FunctionRun
from ..registry import default_registry

# The preview lists this many of the selected runs, oldest first.
SAMPLE_SIZE = 20
CANCEL, RERUN = "cancel", "rerun"


class ReplayForm(forms.Form):
    """Which runs (function, statuses, created between) and what to do with them."""

    function = forms.ChoiceField(label=_("Function"))
    statuses = forms.MultipleChoiceField(
        label=_("Statuses"),
        choices=RunStatus.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Runs in any of these statuses."),
    )
    created_after = forms.DateTimeField(
        label=_("Created at or after"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    created_before = forms.DateTimeField(
        label=_("Created before"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    action = forms.ChoiceField(
        label=_("Action"),
        choices=[
            (RERUN, _("Rerun each from the start (replay)")),
            (CANCEL, _("Cancel each unfinished run")),
        ],
        widget=forms.RadioSelect,
        initial=RERUN,
    )
    # The count the operator saw in the preview; a confirm with another count is refused.
    expected = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        slugs = {function.id for function in default_registry}
        slugs.update(
            FunctionRun.objects.order_by().values_list("function_id", flat=True).distinct()
        )
        self.fields["function"].choices = [(slug, slug) for slug in sorted(slugs)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        after, before = cleaned.get("created_after"), cleaned.get("created_before")
        if after and before and after >= before:
            raise forms.ValidationError(gettext("The time range is empty: after is not before."))
        return cleaned

    def runs(self) -> QuerySet[FunctionRun]:
        """Return the selected runs; a cancel leaves out those with nothing to cancel."""
        data = self.cleaned_data
        runs = FunctionRun.objects.filter(function_id=data["function"], status__in=data["statuses"])
        if data.get("created_after"):
            runs = runs.filter(created_at__gte=data["created_after"])
        if data.get("created_before"):
            runs = runs.filter(created_at__lt=data["created_before"])
        if data["action"] == CANCEL:
            runs = runs.exclude(status__in=FINISHED_STATUSES).filter(
                cancel_requested_at__isnull=True
            )
        return runs.order_by("created_at", "id")


def replay_urls(model_admin: Any) -> list[URLPattern]:
    """Return the bulk page's URL, to list before the run admin's catch-all."""
    opts = model_admin.opts
    view = model_admin.admin_site.admin_view(lambda request: replay_view(model_admin, request))
    return [path("replay/", view, name=f"{opts.app_label}_{opts.model_name}_replay")]


def replay_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Show the selection form; preview the count; on a confirmed POST cancel or rerun."""
    may_cancel = model_admin.has_cancel_permission(request)
    may_rerun = model_admin.has_rerun_permission(request)
    if not (may_cancel or may_rerun):
        raise PermissionDenied
    form = ReplayForm(request.POST or request.GET or None)
    count = None
    sample: list[FunctionRun] = []
    if form.is_bound and form.is_valid():
        act = form.cleaned_data["action"]
        if not (may_cancel if act == CANCEL else may_rerun):
            raise PermissionDenied
        runs = form.runs()
        count = runs.count()
        expected = form.cleaned_data.get("expected")
        if request.method == "POST" and "_confirm" in request.POST:
            if expected == count:
                return _perform(model_admin, request, act, runs)
            model_admin.message_user(
                request,
                gettext("The selection changed since the preview; check the count again."),
                messages.WARNING,
            )
        sample = list(runs.only("id", "function_id", "status", "created_at")[:SAMPLE_SIZE])
        # The confirm button submits the count shown here.
        data = form.data.copy()  # a QueryDict: the statuses keep all their values
        data["expected"] = str(count)
        form = ReplayForm(data)
        form.is_valid()
    opts = model_admin.opts
    changelist_url = reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Bulk cancel and rerun"),
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "form": form,
        "count": count,
        "sample": sample,
        "more": max((count or 0) - len(sample), 0),
        "changelist_url": changelist_url,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/inngest_django/functionrun/replay.html", context)


def _perform(
    model_admin: Any, request: HttpRequest, act: str, runs: QuerySet[FunctionRun]
) -> HttpResponse:
    """Cancel or rerun each run through the run list's own actions, then show the list."""
    picked = list(runs.only("id", "function_id", "status", "cancel_requested_at"))
    if act == CANCEL:
        model_admin.cancel_and_report(request, picked)
    else:
        model_admin.rerun_and_report(request, picked)
    model_admin.message_user(
        request,
        ngettext(
            "Bulk %(action)s of %(count)d run done.",
            "Bulk %(action)s of %(count)d runs done.",
            len(picked),
        )
        % {"action": act, "count": len(picked)},
        messages.INFO,
    )
    opts = model_admin.opts
    return HttpResponseRedirect(
        reverse(f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")
    )
