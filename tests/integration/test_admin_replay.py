"""Bulk cancel and bulk rerun (replay) from the admin: selection, preview count, confirm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun
from tests.helpers import RUNS_URL, staff_client

pytestmark = pytest.mark.django_db

REPLAY_URL = reverse("admin:inngest_django_functionrun_replay")


@pytest.fixture
def runs(inngest_client, drain):
    """Three failed and one completed run of test-flaky, one failed run of test-other."""

    @inngest_client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="t/flaky"))
    def flaky(ctx):
        if ctx.event.data.get("fail"):
            raise inngest.NonRetriableError("boom")

    @inngest_client.create_function(fn_id="other", trigger=inngest.TriggerEvent(event="t/other"))
    def other(ctx):
        raise inngest.NonRetriableError("boom")

    inngest.send([{"name": "t/flaky", "data": {"fail": True}} for _ in range(3)])
    inngest.send([{"name": "t/flaky"}, {"name": "t/other"}])
    drain()


def selection(**extra):
    return {"function": "test-flaky", "statuses": ["FAILED"], "action": "rerun", **extra}


def test_the_run_list_links_to_the_bulk_page(admin_client):
    assert REPLAY_URL in admin_client.get(RUNS_URL).content.decode()


def test_preview_counts_the_selection_and_changes_nothing(admin_client, runs):
    answer = admin_client.post(REPLAY_URL, {**selection(), "_preview": "1"})
    page = answer.content.decode()
    assert 'data-count="3"' in page and 'name="_confirm"' in page
    assert FunctionRun.objects.count() == 5
    none = admin_client.post(REPLAY_URL, {**selection(statuses=["QUEUED"]), "_preview": "1"})
    assert 'data-count="0"' in none.content.decode()
    assert 'name="_confirm"' not in none.content.decode()


def test_confirmed_rerun_starts_a_new_run_for_each_selected_run(admin_client, runs):
    failed = set(
        FunctionRun.objects.filter(function_id="test-flaky", status="FAILED").values_list(
            "pk", flat=True
        )
    )
    answer = admin_client.post(REPLAY_URL, {**selection(expected=3), "_confirm": "1"})
    assert answer.status_code == 302 and answer.url == RUNS_URL
    reruns = FunctionRun.objects.filter(rerun_of__isnull=False)
    assert set(reruns.values_list("rerun_of_id", flat=True)) == failed
    assert reruns.count() == 3


def test_a_confirm_whose_selection_changed_since_the_preview_does_nothing(admin_client, runs):
    answer = admin_client.post(REPLAY_URL, {**selection(expected=2), "_confirm": "1"})
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "selection changed" in page and 'data-count="3"' in page
    assert not FunctionRun.objects.filter(rerun_of__isnull=False).exists()


def test_bulk_cancel_by_time_range(admin_client, runs):
    inngest.send([{"name": "t/flaky"} for _ in range(2)])  # queued: no drain
    old = FunctionRun.objects.filter(status=RunStatus.COMPLETED).first()
    FunctionRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    dispatch_pending()
    queued = FunctionRun.objects.filter(status=RunStatus.QUEUED)
    assert queued.count() == 2
    after = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    chosen = selection(statuses=["QUEUED", "COMPLETED"], action="cancel", created_after=after)
    preview = admin_client.post(REPLAY_URL, {**chosen, "_preview": "1"}).content.decode()
    assert 'data-count="2"' in preview  # the completed run has nothing to cancel
    admin_client.post(REPLAY_URL, {**chosen, "expected": 2, "_confirm": "1"})
    asked = FunctionRun.objects.filter(cancel_requested_at__isnull=False)
    assert set(asked.values_list("pk", flat=True)) == set(queued.values_list("pk", flat=True))
    assert asked.count() == 2


def test_each_action_needs_its_permission(django_user_model, runs):
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    assert viewer.get(REPLAY_URL).status_code == 403
    canceller = staff_client(django_user_model, "c", "view_functionrun", "cancel_functionrun")
    assert canceller.get(REPLAY_URL).status_code == 200
    answer = canceller.post(REPLAY_URL, {**selection(expected=3), "_confirm": "1"})
    assert answer.status_code == 403
    assert not FunctionRun.objects.filter(rerun_of__isnull=False).exists()


def test_an_empty_time_range_is_a_form_error(admin_client, runs):
    now = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    answer = admin_client.post(
        REPLAY_URL, {**selection(created_after=now, created_before=now), "_preview": "1"}
    )
    assert "The time range is empty" in answer.content.decode()
