"""InngestTaskBackend against Django's backend contract, and how a task maps to a run."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

import inngest_django as inngest
from inngest_django import clock
from inngest_django.backends.tasks import InngestTaskBackend
from inngest_django.backends.tasks.framework import (
    FRAMEWORK,
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task,
    task_backends,
)
from inngest_django.enums import RunStatus
from inngest_django.models import Event, FunctionRun
from tests.testapp import tasks
from tests.testapp.models import Call

pytestmark = pytest.mark.django_db

try:
    from django.tasks.exceptions import TaskResultMismatch
except ImportError:
    from django_tasks.exceptions import TaskResultMismatch

ADD = "django-task:default:tests.testapp.tasks.add"


def run_of(result) -> FunctionRun:
    return FunctionRun.objects.select_related("event").get(pk=result.id)


# -- Django's contract (tests/tasks in Django's own suite) ---------------------------------------


def test_the_configured_backend_is_ours_and_says_what_it_supports(task_backend):
    assert isinstance(task_backend, InngestTaskBackend)
    assert task_backend.alias == "default"
    assert task_backend.queues == {"default", "emails", "reports"}
    assert task_backend.options == {"RETRIES": 2, "QUEUE_CONCURRENCY": {"reports": 1}}
    assert task_backend.supports_defer is True
    assert task_backend.supports_async_task is True
    assert task_backend.supports_get_result is True
    assert task_backend.supports_priority is True
    assert list(task_backend.check()) == []


@pytest.mark.parametrize("enqueued", [tasks.add, tasks.add_async], ids=["sync", "async"])
def test_enqueue_returns_a_ready_result(task_backend, enqueued):
    result = enqueued.enqueue(1, b=3)

    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert (result.started_at, result.last_attempted_at, result.finished_at) == (None, None, None)
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018 - the property raises
    assert result.task == enqueued
    assert (result.args, result.kwargs) == ([1], {"b": 3})
    assert (result.attempts, result.errors, result.backend) == (0, [], "default")
    assert result.enqueued_at == run_of(result).created_at


def test_aenqueue_returns_a_ready_result_and_aget_result_reads_it(task_backend):
    result = async_to_sync(tasks.add_async.aenqueue)(2, 5)

    assert (result.status, result.args, result.attempts) == (TaskResultStatus.READY, [2, 5], 0)
    assert async_to_sync(tasks.add_async.aget_result)(result.id) == result
    assert async_to_sync(task_backend.aget_result)(result.id) == result


def test_get_result_reads_back_what_enqueue_returned(task_backend):
    result = tasks.add.enqueue(1, 2)

    assert task_backend.get_result(result.id) == result
    assert tasks.add.get_result(result.id) == result


def test_refresh_reads_what_the_worker_did(task_backend, drain):
    result = tasks.add.enqueue(20, 22)
    drain()

    assert result.status == TaskResultStatus.READY
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        42,
        1,
    )
    assert result.started_at is not None and result.finished_at >= result.started_at
    assert result.last_attempted_at == result.started_at


@pytest.mark.parametrize("result_id", ["123", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "nul\x00", ""])
def test_an_unknown_result_id_raises_task_result_does_not_exist(task_backend, result_id):
    with pytest.raises(TaskResultDoesNotExist):
        task_backend.get_result(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(task_backend.aget_result)(result_id)


def test_a_run_that_is_no_task_is_no_result(task_backend, inngest_client, drain):
    @inngest_client.create_function(fn_id="plain", trigger=inngest.TriggerEvent(event="t/plain"))
    def plain(ctx):
        return 1

    inngest_client.send(inngest.Event(name="t/plain"))
    drain()
    run = FunctionRun.objects.get(function_id="test-plain")
    with pytest.raises(TaskResultDoesNotExist):
        task_backend.get_result(run.pk)


def test_get_result_of_another_task_raises_mismatch(task_backend):
    result = tasks.add_async.enqueue(1, 2)

    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        tasks.add.get_result(result.id)


def test_arguments_json_cannot_hold_are_refused_as_django_does(task_backend):
    with pytest.raises(TypeError, match="Unsupported type"):
        tasks.add.enqueue(datetime.now(), 1)
    assert not FunctionRun.objects.exists()


def test_arguments_over_the_event_size_limit_are_refused_with_the_limit_named(
    task_backend, settings
):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "MAX_EVENT_BYTES": 1000}
    with pytest.raises(ValueError, match="MAX_EVENT_BYTES"):
        tasks.add.enqueue("x" * 2000, "y")
    with pytest.raises(ValueError, match="NUL"):
        tasks.add.enqueue("a\x00b", "c")
    assert not FunctionRun.objects.exists() and not Event.objects.exists()


def test_enqueue_logs_and_sends_task_enqueued_at_commit(
    task_backend, caplog, django_capture_on_commit_callbacks
):
    with (
        caplog.at_level(logging.DEBUG, logger=FRAMEWORK),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        result = tasks.add.enqueue(1, 2)
        assert f"id={result.id}" not in caplog.text
    assert len(callbacks) == 1
    assert f"id={result.id}" in caplog.text and "enqueued" in caplog.text


def test_validation_follows_djangos_contract(task_backend):
    with pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid for backend"):
        tasks.add.using(queue_name="unknown_queue").enqueue(1, 2)
    for priority in (-101, 101, 3.1):
        with pytest.raises(InvalidTask, match="priority must be a whole number"):
            tasks.add.using(priority=priority)
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        tasks.add.using(run_after=datetime.now())
    with pytest.raises(InvalidTask, match="defined at a module level"):
        task()(lambda: None)
    with pytest.raises(InvalidTask, match="first argument of 'context'"):
        task(takes_context=True)(tasks.add.func)
    assert not FunctionRun.objects.exists()


def test_a_task_whose_function_id_would_not_fit_a_column_is_refused(task_backend):
    long_name = "t" * 240
    func = type(tasks.add.func)(tasks.add.func.__code__, tasks.add.func.__globals__, long_name)
    func.__qualname__ = long_name
    with pytest.raises(InvalidTask, match="longer than 255 characters"):
        task()(func)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"RETRIES": 2, "RETRY": 3}, r"unknown key\(s\) 'RETRY'; the valid keys are RETRIES"),
        ({"RETRIES": 21}, r"\['RETRIES'\] must be an int from 0 to 20"),
        ({"RETRIES": True}, r"\['RETRIES'\] must be an int from 0 to 20"),
        ({"QUEUE_CONCURRENCY": ["reports"]}, "must be a dict of queue: limit"),
        ({"QUEUE_CONCURRENCY": {"reports": 0}}, "must be an int of 1 or more"),
        ({"QUEUE_CONCURRENCY": {"nightly": 1}}, "queue 'nightly', which is not in"),
    ],
)
def test_bad_options_are_a_configuration_error_naming_the_key(settings, options, message):
    settings.TASKS = {
        "default": {
            "BACKEND": "inngest_django.backends.tasks.InngestTaskBackend",
            "QUEUES": ["default", "reports"],
            "OPTIONS": options,
        }
    }
    with pytest.raises(ImproperlyConfigured, match=message):
        task_backends["default"]


# -- the mapping: task -> function, priority, run_after, queues ---------------------------------


def test_each_task_path_maps_to_one_registered_function(task_backend, registry):
    first, second = tasks.add.enqueue(1, 2), tasks.add.using(priority=5).enqueue(3, 4)

    assert {run_of(first).function_id, run_of(second).function_id} == {ADD}
    function = registry.get(ADD)
    assert (function.name, function.qualified_name) == ("tests.testapp.tasks.add",) * 2
    assert (function.retries, function.triggers) == (2, [])
    event = run_of(first).event
    assert event.name == "django/task.enqueued"
    assert event.dispatched_at is not None  # no trigger may match it
    assert event.data == {
        "task": "tests.testapp.tasks.add",
        "args": [1, 2],
        "kwargs": {},
        "queue": "default",
        "priority": 0,
        "run_after": None,
    }


def test_retries_default_to_default_retries(settings, registry):
    settings.TASKS = {"default": {"BACKEND": "inngest_django.backends.tasks.InngestTaskBackend"}}
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "DEFAULT_RETRIES": 7}
    tasks.add.enqueue(1, 2)
    assert registry.get(ADD).retries == 7


def test_priority_moves_the_due_time_by_that_many_seconds(task_backend):
    before = clock.now()
    urgent = run_of(tasks.add.using(priority=30).enqueue(1, 2))
    plain = run_of(tasks.add.enqueue(1, 2))
    late = run_of(tasks.add.using(priority=-10).enqueue(1, 2))
    after = clock.now()

    assert before - timedelta(seconds=30) <= urgent.available_at <= after - timedelta(seconds=30)
    assert urgent.flow_note == "priority +30s"
    assert before <= plain.available_at <= after and plain.flow_note == ""
    assert late.available_at >= before + timedelta(seconds=10)
    assert late.flow_note == "priority -10s"
    # The claim takes the oldest due first: the urgent task, though enqueued first here too.
    claimed = FunctionRun.objects.claim(
        worker_id="w", lease_token="t", limit=1, now=after, lease_until=after + timedelta(1)
    )
    assert claimed == [urgent.pk]


def test_run_after_is_the_due_time_and_priority_never_moves_a_task_before_it(task_backend):
    at = timezone.now() + timedelta(hours=1)
    plain = run_of(tasks.add.using(run_after=at).enqueue(1, 2))
    urgent = run_of(tasks.add.using(run_after=at, priority=50).enqueue(1, 2))
    late = run_of(tasks.add.using(run_after=at, priority=-50).enqueue(1, 2))
    past = run_of(tasks.add.using(run_after=timezone.now() - timedelta(hours=1)).enqueue(1, 2))

    assert plain.available_at == at and urgent.available_at == at
    assert late.available_at == at + timedelta(seconds=50)
    assert past.available_at <= clock.now()
    result = tasks.add.get_result(plain.pk)
    assert (result.task.run_after, result.status) == (at, TaskResultStatus.READY)


def test_a_queue_with_a_concurrency_limit_gives_its_runs_that_key(task_backend):
    report = run_of(tasks.record.using(queue_name="reports").enqueue("r"))
    email = run_of(tasks.record.using(queue_name="emails").enqueue("e"))

    assert (report.concurrency_key, report.concurrency_limit) == ("queue:default:reports", 1)
    assert (email.concurrency_key, email.concurrency_limit) == ("", 0)
    assert tasks.record.get_result(report.pk).task.queue_name == "reports"


# -- the caller's transaction --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_rolled_back_with_its_transaction_never_happened(task_backend, drain):
    sent = []

    def received(sender, task_result, **kwargs):
        sent.append(task_result.id)

    from inngest_django.backends.tasks.framework import task_enqueued

    task_enqueued.connect(received)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            lost = tasks.add.enqueue(1, 2)
            assert FunctionRun.objects.filter(pk=lost.id).exists()
            raise RuntimeError("the view failed")
        with transaction.atomic():
            kept = tasks.add.enqueue(3, 4)
    finally:
        task_enqueued.disconnect(received)

    assert sent == [kept.id]
    assert not FunctionRun.objects.filter(pk=lost.id).exists()
    assert Event.objects.count() == 1
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result(lost.id)
    drain()
    assert FunctionRun.objects.get().status == RunStatus.COMPLETED
    assert tasks.add.get_result(kept.id).return_value == 7


@pytest.mark.django_db(transaction=True)
def test_a_task_body_runs_outside_any_commit_group(task_backend, drain, settings):
    # A task is one call with no steps: inside a group that earlier runs opened, its writes
    # would join the group's transaction and hold it (on SQLite the one write lock) for as
    # long as the task runs, stalling every other thread's task.
    for n in range(4):
        tasks.note_transaction.enqueue(f"note-{n}")
    values = {"GROUP_COMMIT_SECONDS": 1.0, "CHECKPOINT": True, "PREFETCH_RUNS": 40}
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, **values}
    drain()
    states = Call.objects.filter(run_id__startswith="note-").values_list("name", flat=True)
    assert list(states) == ["autocommit"] * 4
