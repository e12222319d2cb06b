"""A NUL in an admin URL finds nothing, as Django answers any lookup it cannot run; never a 500.

PostgreSQL refuses NUL in text, even as a query parameter: each of these was a DataError there
(issue 17), while SQLite answered a missing row or, for a list, an empty one.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from inngest_django.enums import RunStatus
from inngest_django.models import FunctionRun
from tests.helpers import DEFERS_URL, EVENTS_URL, RUNS_URL, shown_messages

pytestmark = pytest.mark.django_db

NUL = "%00"


def changelist_url(model) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


@pytest.mark.parametrize("list_url", [RUNS_URL, EVENTS_URL])
@pytest.mark.parametrize("page", ["change", "history"])
def test_a_run_or_event_page_for_an_id_holding_nul_says_it_does_not_exist(
    admin_client, list_url, page
):
    response = admin_client.get(f"{list_url}{NUL}/{page}/", follow=True)
    assert response.redirect_chain == [(reverse("admin:index"), 302)]
    [(level, text)] = shown_messages(response.content.decode())
    assert level == "warning" and text.endswith("Perhaps it was deleted?")


@pytest.mark.parametrize("verb", ["cancel", "rerun", "retry"])
def test_a_run_button_for_an_id_holding_nul_is_404(admin_client, verb):
    assert admin_client.post(f"{RUNS_URL}{NUL}/{verb}/").status_code == 404


@pytest.mark.parametrize(
    ("list_url", "parameter"),
    [
        (RUNS_URL, "status__exact"),
        (RUNS_URL, "function_id"),
        (RUNS_URL, "function"),
        (RUNS_URL, "concurrency_key"),
        (EVENTS_URL, "name_prefix"),
        (EVENTS_URL, "external_id"),
        (DEFERS_URL, "target"),
    ],
)
def test_a_list_filter_holding_nul_redirects_to_the_whole_list(admin_client, list_url, parameter):
    response = admin_client.get(f"{list_url}?{parameter}=a{NUL}", follow=True)
    assert response.redirect_chain == [(f"{list_url}?e=1", 302)]
    assert response.status_code == 200


def test_no_list_answers_nul_in_a_field_or_filter_with_an_error(admin_client):
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "inngest_django":
            continue
        list_url = changelist_url(model)
        fields = [field.attname for field in model._meta.concrete_fields]
        filters = [
            spec.parameter_name
            for spec in model_admin.list_filter
            if hasattr(spec, "parameter_name")
        ]
        for parameter in (*fields, *filters):
            response = admin_client.get(f"{list_url}?{parameter}={NUL}")
            assert (response.status_code, response.url) == (302, f"{list_url}?e=1"), parameter


def test_an_action_on_a_selection_holding_nul_changes_nothing(admin_client, runs):
    selection = {"action": "cancel_runs", "_selected_action": ["\x00", runs.sleeping.pk]}
    response = admin_client.post(RUNS_URL, {**selection, "index": 0})
    assert (response.status_code, response.url) == (302, f"{RUNS_URL}?e=1")
    sleeping = FunctionRun.objects.get(pk=runs.sleeping.pk)
    assert sleeping.status == RunStatus.SLEEPING and sleeping.cancel_requested_at is None
