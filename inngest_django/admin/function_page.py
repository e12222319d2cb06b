"""One function's admin page: its options, pause and resume, and invoke with a JSON payload."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..exceptions import FunctionNotFoundError, InvalidEventError
from ..function_control import invoke_function, pause_function, resume_function
from ..functions import DeferredFunction, Function
from ..models import FunctionPause
from ..models.pauses import PAUSE_PERMISSION
from ..registry import default_registry
from .display import run_id_link_html
from .functions import function_kind, option_texts, trigger_texts
from .send_event import SEND_PERMISSION, json_object_from_text

logger = logging.getLogger(__name__)


class InvokeForm(forms.Form):
    """The invoked run's event data: a JSON object, checked before anything is stored."""

    data = forms.CharField(
        label=_("Data"),
        initial="{}",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "class": "vLargeTextField"}),
        help_text=_("A JSON object, the event data the run sees; empty means {}."),
    )

    def clean_data(self) -> dict[str, Any]:
        return json_object_from_text(self.cleaned_data["data"])


def _perm(model_admin: Any, request: HttpRequest, codename: str) -> bool:
    return request.user.has_perm(f"{model_admin.opts.app_label}.{codename}")


def _url_name(model_admin: Any, verb: str) -> str:
    opts = model_admin.opts
    return f"{opts.app_label}_{opts.model_name}_function_{verb}"


def function_url(model_admin: Any, function_id: str, verb: str = "page") -> str:
    """Return the URL of a function's page, or of its pause or resume endpoint."""
    name = f"{model_admin.admin_site.name}:{_url_name(model_admin, verb)}"
    return reverse(name, args=[quote(function_id)])


def function_page_urls(model_admin: Any) -> list[URLPattern]:
    """Return the function page's URLs; pause and resume first, as the page's path takes any id."""
    wrap = model_admin.admin_site.admin_view

    def toggle(pausing: bool) -> Any:
        return wrap(
            lambda request, function_id: toggle_view(
                model_admin, request, function_id, pausing=pausing
            )
        )

    urls = [
        path(
            f"functions/<path:function_id>/{verb}/",
            toggle(verb == "pause"),
            name=_url_name(model_admin, verb),
        )
        for verb in ("pause", "resume")
    ]
    page = wrap(lambda request, function_id: function_page_view(model_admin, request, function_id))
    return [*urls, path("functions/<path:function_id>/", page, name=_url_name(model_admin, "page"))]


def _function(function_id: str) -> Function:
    try:
        return default_registry.get(function_id)
    except FunctionNotFoundError:
        raise Http404(gettext("No registered function has this id.")) from None


def toggle_view(
    model_admin: Any, request: HttpRequest, function_id: str, *, pausing: bool
) -> HttpResponse:
    """Pause or resume a function (POST only), then go back to where the button was."""
    if not _perm(model_admin, request, PAUSE_PERMISSION):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    user = request.user.get_username()
    if pausing:
        _function(function_id)
        changed = pause_function(function_id, paused_by=user)
        text = gettext("Function %(id)s is paused: it starts no runs and its runs wait.")
    else:
        changed = resume_function(function_id)
        text = gettext("Function %(id)s is resumed: its waiting runs continue.")
    if changed:
        logger.info(
            "Admin %s function_id=%s user=%s",
            "paused" if pausing else "resumed",
            function_id,
            user,
            extra={"function_id": function_id, "action": "admin_function_pause"},
        )
        model_admin.message_user(request, text % {"id": function_id}, messages.SUCCESS)
    else:
        state = gettext("paused") if pausing else gettext("not paused")
        model_admin.message_user(
            request,
            gettext("Function %(id)s was already %(state)s.") % {"id": function_id, "state": state},
            messages.WARNING,
        )
    back = request.POST.get("next", "")
    # Only our own pages: `next` comes from a form a third party could forge.
    if back != model_admin.functions_url():
        back = function_url(model_admin, function_id)
    return HttpResponseRedirect(back)


def function_page_view(model_admin: Any, request: HttpRequest, function_id: str) -> HttpResponse:
    """Show a function's triggers, options and pause state, with the invoke form."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    function = _function(function_id)
    can_invoke = _perm(model_admin, request, SEND_PERMISSION) and not isinstance(
        function, DeferredFunction
    )
    form = InvokeForm(request.POST or None)
    if request.method == "POST":
        if not can_invoke:
            raise PermissionDenied
        if form.is_valid():
            try:
                run_id = invoke_function(function_id, form.cleaned_data["data"])
            except InvalidEventError as exc:
                form.add_error("data", str(exc))
            else:
                return _invoked(model_admin, request, function_id, run_id)
    pause = FunctionPause.objects.filter(function_id=function_id).first()
    opts = model_admin.opts
    changelist_url = reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": function_id,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "function": function,
        "kind": function_kind(function),
        "triggers": trigger_texts(function),
        "options": option_texts(function),
        "pause": pause,
        "can_pause": _perm(model_admin, request, PAUSE_PERMISSION),
        "pause_url": function_url(model_admin, function_id, "pause"),
        "resume_url": function_url(model_admin, function_id, "resume"),
        "form": form if can_invoke else None,
        "runs_url": f"{changelist_url}?function={quote(function_id)}",
        "changelist_url": changelist_url,
        "functions_url": model_admin.functions_url(),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/inngest_django/function.html", context)


def _invoked(
    model_admin: Any, request: HttpRequest, function_id: str, run_id: str | None
) -> HttpResponse:
    logger.info(
        "Admin invoked function_id=%s run_id=%s user=%s",
        function_id,
        run_id,
        request.user.get_username(),
        extra={"function_id": function_id, "run_id": run_id, "action": "admin_invoke"},
    )
    if run_id is None:
        model_admin.message_user(
            request, gettext("Debounce merged the invoke into a pending run."), messages.WARNING
        )
        return HttpResponseRedirect(function_url(model_admin, function_id))
    model_admin.message_user(
        request,
        format_html(gettext("Run {} queued for {}."), run_id_link_html(run_id), function_id),
        messages.SUCCESS,
    )
    opts = model_admin.opts
    change = f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_change"
    return HttpResponseRedirect(reverse(change, args=[quote(run_id)]))
