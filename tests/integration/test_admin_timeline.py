"""The run page for an incident: the timeline, the links between runs, rerun and retry."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils.html import strip_tags

import inngest_django as inngest
from inngest_django.admin.timeline import MAX_BARS
from inngest_django.models import FunctionRun, StepRun
from inngest_django.runs import rerun_run
from tests.helpers import (
    RUNS_URL,
    action_url,
    cells,
    inline,
    readonly_value,
    run_url,
    shown_messages,
    staff_client,
)

pytestmark = pytest.mark.django_db


def timeline_rows(page: str) -> dict[str, dict[str, str]]:
    """Return each timeline row by its label: kind, status, tooltip, text, bar style, links."""
    rows = {}
    pattern = (
        r'<div class="timeline-row" data-kind="([^"]+)" data-status="([^"]+)" title="([^"]*)">'
        r"(.*?)</div>\s*<div class=\"timeline-track\">\s*"
        r'<div class="timeline-bar kind-\1" style="([^"]+)"></div>'
    )
    for kind, status, title, label, style in re.findall(pattern, page, flags=re.S):
        name = re.search(r"<strong>(.*?)</strong>", label).group(1)
        rows[html.unescape(name)] = {
            "kind": kind,
            "status": status,
            "title": html.unescape(title),
            "text": " ".join(html.unescape(strip_tags(label)).split()),
            "style": style,
            "html": label,
        }
    return rows


def bar_position(style: str) -> tuple[float, float]:
    left = float(re.search(r"left: ([0-9.]+)%", style).group(1))
    width = float(re.search(r"width: ([0-9.]+)%", style).group(1))
    return left, width


@pytest.fixture
def incident(inngest_client, drain):
    """Return an order run with a step retried twice, a sleep, a wait, an invoke and a defer.

    Also a run that failed for good, and the runs the order run invoked and deferred.
    """
    flaky_calls = []

    @inngest_client.create_function(fn_id="price", trigger=inngest.TriggerEvent(event="t/unused"))
    def price(ctx):
        return ctx.step.run("double", lambda: ctx.event.data["n"] * 2)

    @inngest.create_defer(inngest_client, id="notify")
    def notify(ctx):
        return ctx.step.run("email", lambda: "sent")

    @inngest_client.create_function(
        fn_id="handle-order", trigger=inngest.TriggerEvent(event="t/order")
    )
    def handle_order(ctx):
        ctx.step.run("load", lambda: {"id": 7})

        def flaky():
            flaky_calls.append(1)
            if len(flaky_calls) < 3:
                raise ValueError(f"gateway <timeout> {len(flaky_calls)}")
            return "ok"

        ctx.step.run("flaky", flaky)
        ctx.step.sleep("pause", timedelta(milliseconds=30))
        ctx.step.wait_for_event("wait-approval", event="t/approved", timeout="1h", match="data.id")
        total = ctx.step.invoke("get-price", function=price, data={"n": 21})
        ctx.defer("notify-customer", function=notify, data={})
        return {"total": total}

    @inngest_client.create_function(
        fn_id="charge", trigger=inngest.TriggerEvent(event="t/charge"), retries=1
    )
    def charge(ctx):
        ctx.step.run("reserve", lambda: "reserved")

        def capture():
            raise RuntimeError("card <declined>")

        ctx.step.run("capture", capture)

    inngest_client.send(
        [inngest.Event(name="t/order", data={"id": 7}), inngest.Event(name="t/charge")]
    )
    drain()
    inngest_client.send(inngest.Event(name="t/approved", data={"id": 7}))
    drain()
    order = FunctionRun.objects.get(function_id="test-handle-order")
    return SimpleNamespace(
        order=order,
        priced=FunctionRun.objects.get(function_id="test-price"),
        notified=FunctionRun.objects.get(function_id="test-notify"),
        failed=FunctionRun.objects.get(function_id="test-charge"),
    )


def test_fixture_incident_runs_reached_the_expected_states(incident):
    assert incident.order.status == "COMPLETED", incident.order.error
    assert incident.order.output == {"total": 42}
    assert incident.priced.parent_run_id == incident.order.pk
    assert incident.notified.parent_run_id == incident.order.pk
    assert incident.notified.status == "COMPLETED"
    assert incident.failed.status == "FAILED"


def test_timeline_draws_a_bar_for_each_step_sleep_wait_invoke_and_defer(admin_client, incident):
    page = admin_client.get(run_url(incident.order)).content.decode()
    rows = timeline_rows(page)
    assert {name: row["kind"] for name, row in rows.items()} == {
        "load": "step",
        "flaky": "step",
        "pause": "sleep",
        "wait-approval": "wait",
        "get-price": "invoke",
        "notify-customer": "defer",
    }
    assert rows["notify-customer"]["status"] == "SCHEDULED"
    for name in ("load", "flaky", "pause", "wait-approval", "get-price"):
        assert rows[name]["status"] == "COMPLETED"
    # Bars go left to right in step order, inside the axis.
    lefts = []
    for name in ("load", "flaky", "pause", "wait-approval", "get-price"):
        left, width = bar_position(rows[name]["style"])
        assert left >= 0 and width > 0 and left + width <= 100.001
        lefts.append(left)
    assert lefts == sorted(lefts)
    # The sleep lasted about 30 ms of a run far longer than that, so it is no full-width bar.
    assert bar_position(rows["pause"]["style"])[1] < 100


def test_timeline_shows_attempts_and_the_error_of_a_failed_step(admin_client, incident):
    rows = timeline_rows(admin_client.get(run_url(incident.order)).content.decode())
    assert "3 attempts" in rows["flaky"]["text"]
    assert "3 attempts" in rows["flaky"]["title"]
    assert "1 attempt" not in rows["load"]["text"]

    failed = timeline_rows(admin_client.get(run_url(incident.failed)).content.decode())
    assert failed["capture"]["status"] == "FAILED"
    assert "2 attempts" in failed["capture"]["text"]
    # The error is escaped in the row label and in the tooltip.
    assert "RuntimeError: card <declined>" in failed["capture"]["text"]
    assert "card &lt;declined&gt;" in failed["capture"]["html"]
    assert "RuntimeError: card <declined>" in failed["capture"]["title"]
    assert failed["reserve"]["status"] == "COMPLETED"


def test_timeline_links_the_matched_event_the_invoked_run_and_the_deferred_run(
    admin_client, incident
):
    rows = timeline_rows(admin_client.get(run_url(incident.order)).content.decode())
    approval = incident.order.waits.get(step_key="wait-approval").event
    event_href = reverse("admin:inngest_django_event_change", args=[approval.pk])
    assert f'href="{event_href}"' in rows["wait-approval"]["html"]
    assert f'href="{run_url(incident.priced)}"' in rows["get-price"]["html"]
    assert f'href="{run_url(incident.notified)}"' in rows["notify-customer"]["html"]
    assert "deferred run" in rows["notify-customer"]["text"]
    assert "Completed" in rows["notify-customer"]["text"]


def test_run_page_links_trigger_event_parent_and_children(admin_client, incident):
    page = admin_client.get(run_url(incident.order)).content.decode()
    event_href = reverse("admin:inngest_django_event_change", args=[incident.order.event_id])
    assert f'href="{event_href}"' in page
    children = " ".join(html.unescape(strip_tags(page)).split())
    assert f"{incident.priced.pk} test-price Completed (invoked at step get-price)" in children
    assert f"{incident.notified.pk} test-notify Completed (defer notify-customer)" in children
    assert readonly_value(page, "pretty_output") == '{ "total": 42 }'

    child_page = admin_client.get(run_url(incident.notified)).content.decode()
    assert f'href="{run_url(incident.order)}"' in child_page
    assert readonly_value(child_page, "parent_run_link") == incident.order.pk


def test_failed_run_page_shows_the_error_with_its_traceback(admin_client, incident):
    page = admin_client.get(run_url(incident.failed)).content.decode()
    error = readonly_value(page, "pretty_error")
    assert error.startswith("RuntimeError: card <declined>")
    assert "Traceback" in error or 'File "' in error
    assert "card &lt;declined&gt;" in page and "card <declined>" not in page


def test_run_page_links_rerun_of_and_reruns_both_ways(admin_client, incident):
    rerun_id = rerun_run(incident.failed.pk)
    page = admin_client.get(run_url(incident.failed)).content.decode()
    assert readonly_value(page, "reruns_links") == f"{rerun_id} Queued"
    assert f'href="{reverse("admin:inngest_django_functionrun_change", args=[rerun_id])}"' in page
    rerun_page = admin_client.get(
        reverse("admin:inngest_django_functionrun_change", args=[rerun_id])
    ).content.decode()
    assert readonly_value(rerun_page, "rerun_of_link") == incident.failed.pk
    assert f'href="{run_url(incident.failed)}"' in rerun_page


def test_timeline_of_a_thousand_steps_draws_the_first_rows_and_counts_the_rest(
    admin_client, inngest_client, drain
):
    @inngest_client.create_function(fn_id="many", trigger=inngest.TriggerEvent(event="t/many"))
    def many(ctx):
        for index in range(1000):
            ctx.step.run(f"s{index}", lambda index=index: index)
        ctx.defer("after", function=tail, data={})

    @inngest.create_defer(inngest_client, id="tail")
    def tail(ctx):
        return "done"

    inngest_client.send(inngest.Event(name="t/many"))
    drain(timeout=60)
    run = FunctionRun.objects.get(function_id="test-many")
    assert StepRun.objects.filter(run=run).count() == 1000
    page = admin_client.get(run_url(run)).content.decode()
    rows = timeline_rows(page)
    assert len(rows) == MAX_BARS and "s0" in rows and f"s{MAX_BARS}" not in rows
    note = " ".join(strip_tags(page).split())
    assert f"{MAX_BARS} rows are drawn; {1001 - MAX_BARS} more are listed in the tables below." in (
        note
    )


# -- rerun and retry ----------------------------------------------------------------------


def test_rerun_action_starts_a_new_run_with_the_same_event_and_says_so(
    admin_client, admin_user, incident, drain
):
    response = admin_client.post(
        RUNS_URL,
        {"action": "rerun_runs", "_selected_action": [incident.order.pk]},
        follow=True,
    )
    rerun = FunctionRun.objects.get(rerun_of=incident.order)
    assert rerun.event_id == incident.order.event_id and rerun.status == "QUEUED"
    assert shown_messages(response.content.decode()) == [
        ("success", f"Rerun {rerun.pk} started for run {incident.order.pk}.")
    ]
    entry = LogEntry.objects.get(object_id=incident.order.pk)
    assert entry.user == admin_user and entry.get_change_message() == f"Rerun as {rerun.pk}."
    # It starts over: the wait matches only events sent after it began.
    drain()
    rerun.refresh_from_db()
    assert rerun.status == "WAITING"
    inngest.Inngest(app_id="test").send(inngest.Event(name="t/approved", data={"id": 7}))
    drain()
    rerun.refresh_from_db()
    assert rerun.status == "COMPLETED" and rerun.output == {"total": 42}


def test_rerun_of_a_function_no_longer_registered_is_reported(admin_client, incident, registry):
    FunctionRun.objects.filter(pk=incident.failed.pk).update(function_id="test-gone")
    response = admin_client.post(
        RUNS_URL, {"action": "rerun_runs", "_selected_action": [incident.failed.pk]}, follow=True
    )
    assert shown_messages(response.content.decode()) == [
        (
            "error",
            f"Run {incident.failed.pk} was not rerun: its function test-gone is no longer "
            "registered.",
        )
    ]
    assert not FunctionRun.objects.filter(rerun_of=incident.failed).exists()


def test_retry_action_requeues_failed_runs_and_skips_the_others(admin_client, incident, drain):
    response = admin_client.post(
        RUNS_URL,
        {
            "action": "retry_runs",
            "_selected_action": [incident.failed.pk, incident.order.pk, incident.priced.pk],
        },
        follow=True,
    )
    assert shown_messages(response.content.decode()) == [
        ("success", f"Run {incident.failed.pk} was queued again from its failed step."),
        ("warning", "2 runs were not failed and were skipped."),
    ]
    incident.failed.refresh_from_db()
    assert incident.failed.status == "QUEUED"
    # Completed steps keep their memo; the failed step lost its.
    steps = dict(incident.failed.steps.values_list("step_key", "status"))
    assert steps == {"reserve": "COMPLETED"}


def test_retry_button_requeues_a_failed_run_and_rerun_button_starts_one(admin_client, incident):
    page = admin_client.get(run_url(incident.failed)).content.decode()
    assert f'action="{action_url("retry", incident.failed)}"' in page
    assert f'action="{action_url("rerun", incident.failed)}"' in page
    assert ">Retry</button>" in page and ">Rerun</button>" in page

    response = admin_client.post(action_url("retry", incident.failed))
    assert response.status_code == 302 and response.url == run_url(incident.failed)
    page = admin_client.get(response.url).content.decode()
    assert shown_messages(page) == [
        ("success", f"Run {incident.failed.pk} was queued again from its failed step.")
    ]
    # No longer failed: no retry button; the page counts the manual retry.
    assert action_url("retry", incident.failed) not in page
    # The next read-only value after the label (Django 6 puts the help text between them).
    shown = re.search(r"Manual retries:</label>.*?<div class=\"readonly\">(\d+)</div>", page, re.S)
    assert shown and shown.group(1) == "1"

    response = admin_client.post(action_url("rerun", incident.failed), follow=True)
    rerun = FunctionRun.objects.get(rerun_of=incident.failed)
    assert shown_messages(response.content.decode()) == [
        ("success", f"Rerun {rerun.pk} started for run {incident.failed.pk}.")
    ]


def test_completed_run_offers_rerun_but_no_retry(admin_client, incident):
    page = admin_client.get(run_url(incident.order)).content.decode()
    assert action_url("rerun", incident.order) in page
    assert action_url("retry", incident.order) not in page
    response = admin_client.post(action_url("retry", incident.order), follow=True)
    assert shown_messages(response.content.decode()) == [
        ("warning", "1 run was not failed and was skipped.")
    ]


def test_rerun_and_retry_need_a_post(admin_client, incident):
    for verb in ("rerun", "retry"):
        assert admin_client.get(action_url(verb, incident.failed)).status_code == 405
    missing = reverse("admin:inngest_django_functionrun_rerun", args=["01NOSUCHRUN"])
    assert admin_client.post(missing).status_code == 404
    assert not FunctionRun.objects.filter(rerun_of=incident.failed).exists()


def test_rerun_and_retry_need_their_own_permissions(django_user_model, incident):
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    page = viewer.get(run_url(incident.failed)).content.decode()
    for verb in ("rerun", "retry", "cancel"):
        assert action_url(verb, incident.failed) not in page
    assert ">Retry</button>" not in page and ">Rerun</button>" not in page
    assert "rerun_runs" not in viewer.get(RUNS_URL).content.decode()
    for verb in ("rerun", "retry"):
        assert viewer.post(action_url(verb, incident.failed)).status_code == 403
        viewer.post(RUNS_URL, {"action": f"{verb}_runs", "_selected_action": [incident.failed.pk]})
    incident.failed.refresh_from_db()
    assert incident.failed.status == "FAILED"
    assert not FunctionRun.objects.filter(rerun_of=incident.failed).exists()

    # Cancelling is a different right: it does not let anyone start work again.
    canceller = staff_client(
        django_user_model, "canceller", "view_functionrun", "cancel_functionrun"
    )
    for verb in ("rerun", "retry"):
        assert canceller.post(action_url(verb, incident.failed)).status_code == 403
    retrier = staff_client(django_user_model, "retrier", "view_functionrun", "retry_functionrun")
    assert retrier.post(action_url("rerun", incident.failed)).status_code == 403
    assert retrier.post(action_url("retry", incident.failed)).status_code == 302
    rerunner = staff_client(django_user_model, "rerunner", "view_functionrun", "rerun_functionrun")
    assert rerunner.post(action_url("rerun", incident.failed)).status_code == 302
    incident.failed.refresh_from_db()
    assert incident.failed.status == "QUEUED"
    assert FunctionRun.objects.filter(rerun_of=incident.failed).count() == 1


def test_run_pages_refuse_anonymous_and_non_staff_users(client, non_staff_client, incident):
    urls = [
        run_url(incident.order),
        action_url("rerun", incident.order),
        action_url("retry", incident.failed),
        action_url("cancel", incident.order),
    ]
    for browser in (client, non_staff_client):
        for url in urls:
            for method in (browser.get, browser.post):
                response = method(url)
                assert response.status_code == 302, url
                assert response.url.startswith(reverse("admin:login")), url
    assert not FunctionRun.objects.filter(rerun_of__isnull=False).exists()


def test_retried_step_keeps_its_failed_attempts_after_it_succeeds(incident):
    flaky = StepRun.objects.get(run=incident.order, step_key="flaky")
    assert flaky.status == "COMPLETED" and flaky.output == "ok"
    attempts = flaky.error["failed_attempts"]
    assert [(a["attempt"], a["name"], a["message"]) for a in attempts] == [
        (1, "ValueError", "gateway <timeout> 1"),
        (2, "ValueError", "gateway <timeout> 2"),
    ]
    for attempt in attempts:
        assert attempt["started_at"] <= attempt["failed_at"]
    assert attempts[0]["failed_at"] <= attempts[1]["started_at"]
    # A step that never failed records nothing.
    assert StepRun.objects.get(run=incident.order, step_key="load").error is None

    capture = StepRun.objects.get(run=incident.failed, step_key="capture")
    assert capture.status == "FAILED"
    assert [a["attempt"] for a in capture.error["failed_attempts"]] == [1, 2]
    assert capture.error["message"] == "card <declined>"


def test_timeline_marks_each_failed_attempt_with_its_error(admin_client, incident):
    page = admin_client.get(run_url(incident.order)).content.decode()
    rows = timeline_rows(page)
    flaky = rows["flaky"]
    assert flaky["status"] == "COMPLETED"
    assert "attempt 1 failed" in flaky["text"] and "attempt 2 failed" in flaky["text"]
    assert "ValueError: gateway <timeout> 1" in flaky["text"]
    assert "gateway &lt;timeout&gt; 2" in flaky["html"]
    # The completed step shows no error of its own, only its attempts.
    assert 'class="timeline-error"' not in flaky["html"]
    assert "attempt 2 failed at" in flaky["title"]
    marks = re.findall(
        r'<span class="timeline-mark" data-attempt="(\d+)" '
        r'style="left: ([0-9.]+)%;" title="([^"]*)"',
        page,
    )
    assert [attempt for attempt, _, _ in marks] == ["1", "2"]
    left, width = bar_position(flaky["style"])
    for _, at, title in marks:
        assert left - 0.001 <= float(at) <= left + width + 0.001
        assert "ValueError: gateway &lt;timeout&gt;" in title
    assert "attempt" not in rows["load"]["text"]

    failed = timeline_rows(admin_client.get(run_url(incident.failed)).content.decode())
    assert "attempt 1 failed" in failed["capture"]["text"]
    assert "attempt 2 failed" in failed["capture"]["text"]


def test_timeline_axis_has_millisecond_ticks_and_sits_above_the_fields(admin_client, incident):
    page = admin_client.get(run_url(incident.order)).content.decode()
    tick = r'<span class="timeline-tick" style="left: ([0-9.]+)%;">([^<]+)</span>'
    ticks = re.findall(tick, page)
    assert float(ticks[0][0]) == 0 and ticks[0][1] == "+0 ms"
    assert 2 <= len(ticks) <= 9
    assert all(re.fullmatch(r"\+[0-9.]+ (ms|s|min|h|d)", label) for _, label in ticks)
    start = re.search(r'<span class="timeline-start">([^<]+)</span>', page).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", start)
    assert page.index('id="timeline"') < page.index("field-status_badge")


def test_steps_table_shows_the_output_of_a_step_that_succeeded_after_failures(
    admin_client, incident
):
    page = admin_client.get(run_url(incident.order)).content.decode()
    steps = inline(page, "steps")
    outputs = dict(zip(cells(steps, "step_key"), cells(steps, "output_or_error"), strict=True))
    assert outputs["flaky"] == '"ok"'


def test_timeline_folds_long_lists_of_rows_and_attempts(admin_client, inngest_client, drain):
    calls = []

    @inngest_client.create_function(
        fn_id="many", trigger=inngest.TriggerEvent(event="t/many"), retries=5
    )
    def many(ctx):
        for index in range(45):
            ctx.step.run(f"s{index}", lambda i=index: i)

        def stubborn():
            calls.append(1)
            if len(calls) < 6:
                raise ValueError(f"try {len(calls)}")
            return "done"

        ctx.step.run("stubborn", stubborn)

    inngest_client.send(inngest.Event(name="t/many"))
    drain()
    run = FunctionRun.objects.get(function_id="test-many")
    page = admin_client.get(run_url(run)).content.decode()
    assert len(timeline_rows(page)) == 46
    assert "Show 6 more rows" in page
    rows = timeline_rows(page)
    # Five failures: the last three listed, the two before folded, all five marked.
    assert "2 earlier failed attempts" in rows["stubborn"]["text"]
    assert rows["stubborn"]["html"].count('class="timeline-failure"') == 5
    assert page.count('class="timeline-mark"') == 5
