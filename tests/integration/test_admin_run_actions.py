"""Cancelling runs from the admin: the list action, the run-page button, their permission."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from inngest_django.models import Event, FunctionRun
from tests.helpers import (
    RUNS_URL,
    action_url,
    cells,
    readonly_value,
    run_url,
    shown_messages,
    staff_client,
    status_notes,
    until_text,
)

pytestmark = pytest.mark.django_db


def test_cancel_permission_exists_with_its_name():
    permission = Permission.objects.get(codename="cancel_functionrun")
    assert permission.name == "Can cancel function runs"
    assert permission.content_type.model_class() is FunctionRun


def test_cancel_action_asks_sleeping_runs_to_stop_and_skips_finished_ones(
    admin_client, admin_user, runs, drain
):
    page = admin_client.get(RUNS_URL).content.decode()
    assert '<option value="cancel_runs">Cancel selected runs</option>' in page
    response = admin_client.post(
        RUNS_URL,
        {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk, runs.completed.pk]},
        follow=True,
    )
    assert shown_messages(response.content.decode()) == [
        ("success", "1 run was asked to stop; a worker cancels it at its next step."),
        ("warning", "1 run had already finished."),
    ]
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.status == "SLEEPING" and runs.sleeping.cancel_requested_at is not None
    # Until a worker gets to it, the list says it was asked, and its page offers no button.
    assert status_notes(response.content.decode())[runs.sleeping.pk] == "Sleeping asked to stop"
    page = admin_client.get(run_url(runs.sleeping)).content.decode()
    assert action_url("cancel", runs.sleeping) not in page
    assert readonly_value(page, "cancel_reason_text") == "admin: cancelled by admin"
    # Who asked is in the run's admin history.
    entry = LogEntry.objects.get(object_id=runs.sleeping.pk)
    assert entry.user == admin_user and entry.get_change_message() == "Asked the run to stop."

    again = admin_client.post(
        RUNS_URL, {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk]}, follow=True
    )
    assert shown_messages(again.content.decode()) == [
        ("warning", "1 run had already been asked to stop.")
    ]

    drain()
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.status == "CANCELLED"
    page = admin_client.get(run_url(runs.sleeping)).content.decode()
    assert readonly_value(page, "status_badge") == "Cancelled"
    assert readonly_value(page, "cancel_requested") == until_text(runs.sleeping.cancel_requested_at)
    assert Event.objects.filter(name="inngest/function.cancelled").count() == 1


def test_cancel_action_reports_several_runs_in_the_plural(
    admin_client, inngest_client, drain, waiting
):
    response = admin_client.post(
        RUNS_URL,
        {"action": "cancel_runs", "_selected_action": [waiting.inactive.pk, waiting.active.pk]},
        follow=True,
    )
    assert shown_messages(response.content.decode()) == [
        ("success", "2 runs were asked to stop; workers cancel them at their next step.")
    ]
    drain()
    statuses = FunctionRun.objects.filter(function_id="test-onboard").values_list(
        "status", flat=True
    )
    assert list(statuses) == ["CANCELLED", "CANCELLED"]


def test_cancel_button_asks_the_run_to_stop(admin_client, waiting, drain):
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    action = re.escape(action_url("cancel", waiting.inactive))
    form = re.search(
        rf'<form class="cancel-run run-tool" method="post" action="{action}">(.*?)</form>',
        page,
        flags=re.S,
    )
    assert form and 'name="csrfmiddlewaretoken"' in form.group(1)
    assert ">Cancel run</button>" in form.group(1)

    response = admin_client.post(action_url("cancel", waiting.inactive))
    assert response.status_code == 302 and response.url == run_url(waiting.inactive)
    page = admin_client.get(response.url).content.decode()
    assert shown_messages(page) == [
        ("success", "1 run was asked to stop; a worker cancels it at its next step.")
    ]
    assert action_url("cancel", waiting.inactive) not in page
    assert readonly_value(page, "status_badge").endswith("asked to stop")
    drain()
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    assert readonly_value(page, "status_badge") == "Cancelled"
    assert cells(page, "outcome_badge") == ["Run ended first", "Run ended first"]


def test_cancel_button_needs_a_post_with_a_csrf_token(admin_user, waiting):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    page = browser.get(run_url(waiting.inactive)).content.decode()
    assert browser.get(action_url("cancel", waiting.inactive)).status_code == 405
    assert browser.post(action_url("cancel", waiting.inactive)).status_code == 403
    waiting.inactive.refresh_from_db()
    assert waiting.inactive.cancel_requested_at is None

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post(action_url("cancel", waiting.inactive), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    waiting.inactive.refresh_from_db()
    assert waiting.inactive.cancel_requested_at is not None


def test_finished_run_page_offers_no_cancel_button(admin_client, runs):
    page = admin_client.get(run_url(runs.completed)).content.decode()
    assert action_url("cancel", runs.completed) not in page and "Cancel run" not in page
    response = admin_client.post(action_url("cancel", runs.completed), follow=True)
    assert shown_messages(response.content.decode()) == [("warning", "1 run had already finished.")]
    missing = reverse("admin:inngest_django_functionrun_cancel", args=["01NOSUCHRUN"])
    assert admin_client.post(missing).status_code == 404


def test_without_the_permission_there_is_no_action_no_button_and_a_403(django_user_model, runs):
    viewer = staff_client(
        django_user_model, "viewer", "view_functionrun", "view_steprun", "view_wait"
    )
    page = viewer.get(RUNS_URL).content.decode()
    assert run_url(runs.sleeping) in page
    assert "cancel_runs" not in page and "action-checkbox" not in page
    page = viewer.get(run_url(runs.sleeping)).content.decode()
    assert action_url("cancel", runs.sleeping) not in page and "Cancel run" not in page
    assert viewer.post(action_url("cancel", runs.sleeping)).status_code == 403
    viewer.post(RUNS_URL, {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk]})
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.cancel_requested_at is None


def test_the_cancel_permission_alone_lets_staff_cancel(django_user_model, runs, drain):
    operator = staff_client(django_user_model, "operator", "view_functionrun", "cancel_functionrun")
    page = operator.get(run_url(runs.sleeping)).content.decode()
    assert f'action="{action_url("cancel", runs.sleeping)}"' in page
    assert "cancel_runs" in operator.get(RUNS_URL).content.decode()
    response = operator.post(
        RUNS_URL, {"action": "cancel_runs", "_selected_action": [runs.sleeping.pk]}, follow=True
    )
    assert shown_messages(response.content.decode())[0][0] == "success"
    drain()
    runs.sleeping.refresh_from_db()
    assert runs.sleeping.status == "CANCELLED"
    assert runs.sleeping.cancel_reason == "admin: cancelled by operator"
