"""The read-only admin shows real runs, steps and events, and filters and searches them."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

import inngest_django as inngest
from inngest_django.models import CronSchedule, Event, FunctionRun, IdempotencyKey

pytestmark = pytest.mark.django_db

RUNS_URL = reverse("admin:inngest_django_functionrun_changelist")
EVENTS_URL = reverse("admin:inngest_django_event_changelist")


def run_url(run: FunctionRun) -> str:
    return reverse("admin:inngest_django_functionrun_change", args=[run.pk])


def event_url(event: Event) -> str:
    return reverse("admin:inngest_django_event_change", args=[event.pk])


def cells(page: str, field: str) -> list[str]:
    """Return the text of each table cell for `field` (list rows or inline rows), in order."""
    found = re.findall(rf'<td class="field-{field}">(.*?)</td>', page, flags=re.S)
    return [html.unescape(strip_tags(cell)).strip() for cell in found]


@pytest.fixture
def runs(client, drain):
    """Return a completed run (its second step retried once), a failed run and a sleeping run."""
    copy_calls = []

    @client.create_function(fn_id="import-images", trigger=inngest.TriggerEvent(event="t/imported"))
    def import_images(ctx):
        urls = ctx.step.run("fetch-urls", lambda: ["a.png", "b.png"])

        def copy():
            copy_calls.append(1)
            if len(copy_calls) == 1:
                raise ValueError("bucket <busy>")
            return {"copied": len(urls)}

        return ctx.step.run("copy-images", copy)

    @client.create_function(fn_id="charge-card", trigger=inngest.TriggerEvent(event="t/ordered"))
    def charge_card(ctx):
        def charge():
            raise inngest.NonRetriableError("card <declined>")

        ctx.step.run("charge", charge)

    @client.create_function(fn_id="send-email", trigger=inngest.TriggerEvent(event="t/signed-up"))
    def send_email(ctx):
        ctx.step.run("send-welcome", lambda: "sent")
        ctx.step.sleep("wait-a-day", "1d")

    client.send(
        [
            inngest.Event(name="t/imported", data={"sku": "<script>alert(1)</script>"}),
            inngest.Event(name="t/ordered", data={"order": 7}, id="order-7"),
            inngest.Event(name="t/signed-up", data={"email": "ada@example.com"}),
        ]
    )
    drain()
    return SimpleNamespace(
        completed=FunctionRun.objects.get(function_id="test-import-images"),
        failed=FunctionRun.objects.get(function_id="test-charge-card"),
        sleeping=FunctionRun.objects.get(function_id="test-send-email"),
    )


def test_fixture_runs_reached_the_expected_states(runs):
    assert runs.completed.status == "COMPLETED", runs.completed.error
    assert runs.failed.status == "FAILED"
    assert runs.sleeping.status == "SLEEPING"


# -- the run list -------------------------------------------------------------------------


def test_run_list_shows_every_run_with_a_coloured_status_badge(admin_client, runs):
    page = admin_client.get(RUNS_URL).content.decode()
    for run in (runs.completed, runs.failed, runs.sleeping):
        assert run_url(run) in page
        assert run.function_id in page
    assert "background: #198754" in page and ">Completed</span>" in page
    assert "background: #dc3545" in page and ">Failed</span>" in page
    assert "background: #6f42c1" in page and ">Sleeping</span>" in page


def test_status_filter_narrows_the_run_list(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"status__exact": "FAILED"}).content.decode()
    assert run_url(runs.failed) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.sleeping) not in page


def test_function_filter_offers_registered_and_stored_slugs(admin_client, runs):
    orphan_event = Event.objects.create(id="01ORPHANEVENT0000000000000", name="t/old", ts=0)
    FunctionRun.objects.create(
        id="01ORPHANRUN000000000000000",
        function_id="retired-function",
        event=orphan_event,
        available_at=timezone.now(),
    )
    page = admin_client.get(RUNS_URL).content.decode()
    # Registered, with runs; registered at startup, without runs; only in the database.
    for slug in ("test-send-email", "testapp-write-orders", "retired-function"):
        assert f"?function={slug}" in page


def test_function_filter_narrows_the_run_list(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"function": "test-send-email"}).content.decode()
    assert run_url(runs.sleeping) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.failed) not in page


def test_search_by_run_id_finds_that_run_only(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"q": runs.failed.pk.lower()}).content.decode()
    assert run_url(runs.failed) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.sleeping) not in page


def test_search_by_event_id_finds_the_runs_it_started(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"q": runs.sleeping.event_id}).content.decode()
    assert run_url(runs.sleeping) in page
    assert run_url(runs.failed) not in page


# -- the run page -------------------------------------------------------------------------


def test_completed_run_page_shows_output_event_and_steps_in_order(admin_client, runs):
    page = admin_client.get(run_url(runs.completed)).content.decode()
    assert event_url(runs.completed.event) in page
    assert "t/imported" in page
    assert "&quot;copied&quot;: 2" in page  # pretty output
    assert cells(page, "step_key") == ["fetch-urls", "copy-images"]
    assert cells(page, "op") == ["Run", "Run"]
    assert cells(page, "status_badge") == ["Completed", "Completed"]
    assert cells(page, "attempts") == ["1", "2"]  # copy-images needed a retry
    assert '"a.png"' in cells(page, "output_or_error")[0]


def test_failed_run_page_shows_error_name_message_and_stack(admin_client, runs):
    page = admin_client.get(run_url(runs.failed)).content.decode()
    assert "<strong>NonRetriableError</strong>: card &lt;declined&gt;" in page
    assert "card <declined>" not in page
    assert "Traceback (most recent call last)" in page
    # The failed step's row in the inline carries the error too, under a Failed badge.
    assert cells(page, "step_key") == ["charge"]
    assert cells(page, "status_badge") == ["Failed"]
    assert cells(page, "output_or_error")[0].startswith("NonRetriableError: card <declined>")


def test_sleeping_run_page_shows_wake_time_and_lease_fields(admin_client, runs):
    page = admin_client.get(run_url(runs.sleeping)).content.decode()
    wait = runs.sleeping.steps.get(step_key="wait-a-day")
    assert wait.wake_at is not None
    assert cells(page, "step_key") == ["send-welcome", "wait-a-day"]
    assert cells(page, "status_badge") == ["Completed", "Sleeping"]
    assert cells(page, "op") == ["Run", "Sleep"]
    assert cells(page, "wake_at")[0] == "-"
    assert cells(page, "wake_at")[1] != "-"
    for label in ("Locked by", "Locked until", "Available at"):
        assert label in page


def test_run_page_links_parent_and_child_runs(admin_client, runs):
    child = FunctionRun.objects.create(
        id="01CHILDRUN0000000000000000",
        function_id="test-child",
        event=runs.completed.event,
        parent_run=runs.completed,
        available_at=timezone.now(),
    )
    parent_page = admin_client.get(run_url(runs.completed)).content.decode()
    assert f'<a href="{run_url(child)}">{child.pk}</a> test-child Queued' in parent_page
    child_page = admin_client.get(run_url(child)).content.decode()
    assert f'<a href="{run_url(runs.completed)}">{runs.completed.pk}</a>' in child_page


# -- events -------------------------------------------------------------------------------


def test_event_list_shows_names_producer_ids_and_run_counts(admin_client, runs):
    page = admin_client.get(EVENTS_URL).content.decode()
    assert "t/ordered" in page and "order-7" in page
    assert "inngest/function.failed" in page
    names, counts = cells(page, "id"), cells(page, "run_count")
    assert dict(zip(names, counts, strict=True))[runs.failed.event_id] == "1"


def test_event_filters_by_name_prefix_and_dispatch(admin_client, runs):
    inngest.send(inngest.Event(name="later/queued"))
    page = admin_client.get(EVENTS_URL).content.decode()
    assert "?name_prefix=inngest%2F" in page and "?name_prefix=t%2F" in page
    engine_only = admin_client.get(EVENTS_URL, {"name_prefix": "inngest/"}).content.decode()
    assert "inngest/function.finished" in engine_only
    assert "t/ordered" not in engine_only
    waiting = admin_client.get(EVENTS_URL, {"dispatched": "no"}).content.decode()
    assert "later/queued" in waiting
    assert "t/ordered" not in waiting


def test_event_search_finds_producer_id(admin_client, runs):
    page = admin_client.get(EVENTS_URL, {"q": "order-7"}).content.decode()
    assert event_url(runs.failed.event) in page
    assert event_url(runs.completed.event) not in page


def test_event_page_escapes_data_and_lists_the_runs_it_started(admin_client, runs):
    page = admin_client.get(event_url(runs.completed.event)).content.decode()
    assert html.escape('"sku": "<script>alert(1)</script>"') in page
    assert "<script>alert(1)" not in page
    assert run_url(runs.completed) in page
    assert "test-import-images" in page and ">Completed</span>" in page


# -- cron schedules and idempotency keys ------------------------------------------------


def test_cron_schedule_and_idempotency_key_lists_show_rows(admin_client, client, runs, drain):
    client.create_function(
        fn_id="nightly", trigger=inngest.TriggerCron(cron="TZ=Europe/Paris 0 3 * * *")
    )(lambda ctx: None)
    drain()
    assert CronSchedule.objects.filter(function_id="test-nightly").exists()
    page = admin_client.get(reverse("admin:inngest_django_cronschedule_changelist"))
    assert "TZ=Europe/Paris 0 3 * * *" in page.content.decode()
    assert IdempotencyKey.objects.filter(key="event:order-7").exists()
    page = admin_client.get(reverse("admin:inngest_django_idempotencykey_changelist"))
    assert "event:order-7" in page.content.decode()


# -- read-only ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["event", "functionrun", "cronschedule", "idempotencykey"])
def test_add_is_forbidden_and_not_offered(admin_client, model):
    add_url = reverse(f"admin:inngest_django_{model}_add")
    changelist = admin_client.get(reverse(f"admin:inngest_django_{model}_changelist"))
    assert changelist.status_code == 200
    assert add_url not in changelist.content.decode()
    assert admin_client.get(add_url).status_code == 403


def test_runs_cannot_be_deleted_or_changed(admin_client, runs):
    delete_url = reverse("admin:inngest_django_functionrun_delete", args=[runs.failed.pk])
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = admin_client.post(run_url(runs.failed), {"status": "COMPLETED"})
    assert response.status_code == 403
    runs.failed.refresh_from_db()
    assert runs.failed.status == "FAILED"
    page = admin_client.get(RUNS_URL).content.decode()
    assert "delete_selected" not in page
    assert 'name="_save"' not in admin_client.get(run_url(runs.failed)).content.decode()
