"""Metrics over real runs: counts per minute, percentiles, backlog, oldest due, slots in use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import inngest_django as inngest
from inngest_django import metrics
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_runs(inngest_client, drain):
    """Return ten finished runs of "test-ok" (seven completed, three failed) and `now`."""

    @inngest_client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="t/ok"))
    def ok(ctx):
        if ctx.event.data["fail"]:
            raise inngest.NonRetriableError("no")
        return "done"

    inngest_client.send([inngest.Event(name="t/ok", data={"fail": i >= 7}) for i in range(10)])
    drain()
    now = timezone.now().replace(second=30, microsecond=0)
    runs = list(FunctionRun.objects.filter(function_id="test-ok").order_by("id"))
    # Runs 0-5 started two minutes ago, 6-9 a minute ago; run i took i+1 seconds.
    for index, run in enumerate(runs):
        started = now - timedelta(minutes=2 if index < 6 else 1)
        FunctionRun.objects.filter(pk=run.pk).update(
            started_at=started, finished_at=started + timedelta(seconds=index + 1)
        )
    return runs, now


def test_runs_started_completed_and_failed_are_counted_per_minute(finished_runs):
    runs, now = finished_runs
    assert [r.status for r in runs].count(RunStatus.FAILED) == 3
    figures = metrics.figures(now, minutes=5)
    chart = [(m.at, m.started, m.completed, m.failed) for m in figures.minutes]
    minute = now.replace(second=0)
    assert chart == [
        (minute - timedelta(minutes=4), 0, 0, 0),
        (minute - timedelta(minutes=3), 0, 0, 0),
        (minute - timedelta(minutes=2), 6, 6, 0),
        (minute - timedelta(minutes=1), 4, 1, 3),
        (minute, 0, 0, 0),
    ]
    assert (figures.started, figures.completed, figures.failed) == (10, 7, 3)


def test_durations_give_p50_and_p95_overall_and_per_minute(finished_runs):
    _, now = finished_runs
    figures = metrics.figures(now, minutes=5)
    # 1..10 s: the median is 5.5 s, the 95th percentile 9.55 s (linear interpolation).
    assert figures.p50 == pytest.approx(5.5)
    assert figures.p95 == pytest.approx(9.55)
    two_ago = figures.minutes[2]
    assert two_ago.p50 == pytest.approx(3.5)
    assert figures.minutes[0].p50 is None


def test_a_function_filter_counts_only_its_runs(finished_runs):
    _, now = finished_runs
    assert metrics.figures(now, minutes=5, function_id="test-ok").started == 10
    assert metrics.figures(now, minutes=5, function_id="test-other").started == 0


def test_backlog_counts_queued_and_due_runs_and_the_oldest_due(inngest_client, drain):
    @inngest_client.create_function(fn_id="later", trigger=inngest.TriggerEvent(event="t/later"))
    def later(ctx):
        return "x"

    inngest_client.send([inngest.Event(name="t/later") for _ in range(4)])
    # Dispatch only: the runs are queued, due now.
    dispatch_pending()
    now = timezone.now()
    ids = list(FunctionRun.objects.order_by("id").values_list("id", flat=True))
    assert len(ids) == 4
    FunctionRun.objects.filter(pk=ids[0]).update(available_at=now - timedelta(seconds=90))
    FunctionRun.objects.filter(pk=ids[1]).update(available_at=now + timedelta(hours=1))
    figures = metrics.figures(now)
    assert (figures.queued, figures.due) == (4, 3)
    assert figures.oldest_due == now - timedelta(seconds=90)
    assert figures.oldest_due_seconds == pytest.approx(90)
    by_function = metrics.figures_by_function(now, timedelta(minutes=1))
    assert (by_function["test-later"].queued, by_function["test-later"].due) == (4, 3)


def test_executing_runs_of_a_concurrency_key_count_as_slots_in_use(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="limited",
        trigger=inngest.TriggerEvent(event="t/limited"),
        concurrency=[inngest.Concurrency(limit=3, key="event.data.user")],
    )
    def limited(ctx):
        return "x"

    inngest_client.send([inngest.Event(name="t/limited", data={"user": "u1"}) for _ in range(3)])
    drain()
    now = timezone.now()
    runs = list(FunctionRun.objects.order_by("id"))
    key = runs[0].concurrency_key
    assert key
    # Two of them as a worker holds them mid-pass.
    FunctionRun.objects.filter(pk__in=[runs[0].pk, runs[1].pk]).update(
        status=RunStatus.RUNNING, locked_until=now + timedelta(seconds=30)
    )
    figures = metrics.figures(now)
    assert [(s.key, s.in_use, s.limit) for s in figures.slots] == [(key, 2, 3)]
    assert figures.running == 2


def test_percentile_interpolates_and_is_none_for_no_values():
    assert metrics.percentile([], 0.5) is None
    assert metrics.percentile([4.0], 0.95) == 4.0
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
