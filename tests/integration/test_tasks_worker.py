"""django.tasks end to end: tasks enqueued here run on real `run_inngest_worker` processes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from inngest_django.backends.tasks.framework import TaskResultStatus
from inngest_django.models import Event, FunctionRun
from tests.helpers import most_at_once
from tests.testapp import tasks
from tests.testapp.models import Call

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The worker loads tests.settings.TEST_TASKS, as the task_backend fixture does here.
TASKS_ENV = {"INNGEST_DJANGO_TEST_TASKS": "1"}


def finished(*results) -> bool:
    for result in results:
        result.refresh()
    return all(result.is_finished for result in results)


def intervals(name_prefix: str) -> list[tuple]:
    """Return the (start, end) of each record() task whose name starts with the prefix."""
    calls = Call.objects.filter(run_id__startswith=name_prefix)
    starts = {c.run_id: c.at for c in calls if c.name == "start"}
    ends = {c.run_id: c.at for c in calls if c.name == "end"}
    return sorted((starts[name], ends[name]) for name in starts)


def test_results_show_what_the_worker_did_with_each_task(task_backend, workers):
    add = tasks.add.enqueue(2, 3)
    add_async = tasks.add_async.enqueue(4, 5)
    fail = tasks.fail.enqueue("boom")
    flaky = tasks.flaky.enqueue(3)
    bad_value = tasks.returns_a_datetime.enqueue()
    workers.start("--threads", "2", **TASKS_ENV)
    results = (add, add_async, fail, flaky, bad_value)
    workers.wait_for(lambda: finished(*results), what="every task to finish")

    assert (add.status, add.return_value, add.attempts, add.errors) == (
        TaskResultStatus.SUCCESSFUL,
        5,
        1,
        [],
    )
    assert add.enqueued_at <= add.started_at <= add.finished_at
    assert add.last_attempted_at == add.started_at
    assert (add_async.status, add_async.return_value) == (TaskResultStatus.SUCCESSFUL, 9)
    # RETRIES = 2: three attempts, then FAILED with the last attempt's error.
    assert (fail.status, fail.attempts, fail.worker_ids) == (TaskResultStatus.FAILED, 3, [""] * 3)
    # When a retried attempt began is not stored.
    assert fail.last_attempted_at is None and fail.started_at is not None
    [error] = fail.errors
    assert error.exception_class is ValueError
    assert error.exception_class_path == "builtins.ValueError"
    assert error.traceback.startswith("Traceback (most recent call last):")
    assert error.traceback.rstrip().endswith("ValueError: boom")
    with pytest.raises(ValueError, match="Task failed"):
        fail.return_value  # noqa: B018 - the property raises
    # takes_context: the context's attempt counts the retries.
    assert (flaky.status, flaky.attempts) == (TaskResultStatus.SUCCESSFUL, 3)
    assert flaky.return_value == {"attempt": 3, "result_id": flaky.id}
    assert flaky.errors == []
    # A return value JSON cannot hold fails the task at once: retrying cannot change it.
    assert (bad_value.status, bad_value.attempts) == (TaskResultStatus.FAILED, 1)
    assert "NonRetriableError" in bad_value.errors[0].exception_class_path
    assert "returned a value that is not JSON" in bad_value.errors[0].traceback


def test_run_after_holds_a_task_back_until_then(task_backend, workers):
    workers.start(**TASKS_ENV)
    workers.wait_for_log(0, "Worker started")
    at = timezone.now() + timedelta(seconds=2)
    later = tasks.record.using(run_after=at).enqueue("later")
    now = tasks.record.enqueue("now")
    workers.wait_for(lambda: finished(now), what="the task due now")
    # Looked at until just before run_after, however long the task due now took.
    while timezone.now() < at - timedelta(seconds=0.2):
        later.refresh()
        assert later.status == TaskResultStatus.READY
        time.sleep(0.05)

    workers.wait_for(lambda: finished(later), what="the task due later")
    assert later.status == TaskResultStatus.SUCCESSFUL
    assert later.started_at >= at
    assert Call.objects.get(run_id="later", name="start").at >= at


def test_a_rolled_back_enqueue_runs_nothing(task_backend, workers):
    workers.start(**TASKS_ENV)
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = tasks.record.enqueue("lost")
        raise RuntimeError("the view failed")
    with transaction.atomic():
        kept = tasks.record.enqueue("kept")
    workers.wait_for(lambda: finished(kept), what="the committed task")

    assert kept.status == TaskResultStatus.SUCCESSFUL
    assert list(FunctionRun.objects.values_list("pk", flat=True)) == [kept.id]
    assert Event.objects.filter(name="django/task.enqueued").count() == 1
    assert not FunctionRun.objects.filter(pk=lost.id).exists()
    assert set(Call.objects.values_list("run_id", flat=True)) == {"kept"}


def test_a_higher_priority_task_runs_before_those_enqueued_earlier(task_backend, workers):
    for index in range(3):
        tasks.record.enqueue(f"plain-{index}")
    urgent = tasks.record.using(priority=50).enqueue("urgent")
    workers.start("--threads", "1", **TASKS_ENV)
    workers.wait_for(lambda: Call.objects.filter(name="end").count() == 4, what="all four tasks")

    order = list(Call.objects.filter(name="start").order_by("id").values_list("run_id", flat=True))
    assert order == ["urgent", "plain-0", "plain-1", "plain-2"]
    assert tasks.record.get_result(urgent.id).return_value == "urgent"


def test_a_queue_with_a_concurrency_limit_runs_one_task_at_a_time(task_backend, workers):
    for index in range(3):
        tasks.record.using(queue_name="reports").enqueue(f"report-{index}", 0.3)
        tasks.record.using(queue_name="emails").enqueue(f"email-{index}", 0.3)
    workers.start("--threads", "4", **TASKS_ENV)
    workers.wait_for(lambda: Call.objects.filter(name="end").count() == 6, what="all six tasks")

    assert most_at_once(intervals("report-")) == 1
    assert most_at_once(intervals("email-")) >= 2
