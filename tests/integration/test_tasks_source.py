"""The worker's side of the tasks backend: functions registered on first use, signals, admin."""

from __future__ import annotations

import sys
import textwrap

import pytest

import inngest_django as inngest
from inngest_django.backends.tasks import source
from inngest_django.backends.tasks.framework import (
    TaskResultStatus,
    task_finished,
    task_started,
)
from inngest_django.checks import check_functions_registered
from inngest_django.enums import RunStatus
from inngest_django.models import FunctionRun
from inngest_django.registry import FunctionRegistry, default_registry
from inngest_django.testing import drain
from tests.helpers import FUNCTIONS_URL, readonly_value, run_url
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

ADD = "django-task:default:tests.testapp.tasks.add"


@pytest.fixture
def task_source(task_backend, registry):
    """Install the task source on the default registry, as apps.ready does with TASKS set."""
    source.install()
    return registry


def test_a_registry_with_only_the_task_source_runs_task_runs(task_backend):
    result = tasks.add.enqueue(2, 3)
    fresh = FunctionRegistry()
    # A worker process that never saw the enqueue: no functions, only the source.
    assert not fresh
    fresh.add_source(source.TaskSource())
    assert fresh and len(fresh) == 0

    drain(registry=fresh)

    assert tasks.add.get_result(result.id).return_value == 5
    assert [function.id for function in fresh] == [ADD]


def test_the_worker_builds_the_function_from_its_own_settings(task_backend, settings):
    result = tasks.fail.enqueue("boom")
    # The worker's settings differ from the sender's: the worker's RETRIES count.
    settings.TASKS = {
        "default": {**settings.TEST_TASKS["default"], "OPTIONS": {"RETRIES": 0}},
    }
    fresh = FunctionRegistry()
    fresh.add_source(source.TaskSource())
    drain(registry=fresh)

    failed = tasks.fail.get_result(result.id)
    assert (failed.status, failed.attempts) == (TaskResultStatus.FAILED, 1)


def test_a_task_the_worker_cannot_import_fails_its_run_with_a_clear_error(
    task_source, tmp_path, monkeypatch
):
    (tmp_path / "vanishing_tasks.py").write_text(
        textwrap.dedent(
            """
            from inngest_django.backends.tasks.framework import task

            @task
            def hello():
                return "hi"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import vanishing_tasks

    result = vanishing_tasks.hello.enqueue()
    # As on a worker deployed without the module: gone from this process, and not registered.
    monkeypatch.delitem(sys.modules, "vanishing_tasks")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    default_registry.restore({})

    drain()

    run = FunctionRun.objects.get(pk=result.id)
    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "TaskNotFoundError"
    assert run.error["message"] == (
        "Django task 'django-task:default:vanishing_tasks.hello' cannot run: 'vanishing_tasks."
        "hello' cannot be imported (ModuleNotFoundError: No module named 'vanishing_tasks')"
    )


def test_a_path_that_is_no_task_fails_its_run_saying_so(task_source):
    result = tasks.add.enqueue(1, 2)
    # What a run enqueued before a deploy that turned the task into a plain function finds.
    FunctionRun.objects.filter(pk=result.id).update(
        function_id="django-task:default:tests.testapp.tasks.not_a_task"
    )
    drain()

    run = FunctionRun.objects.get(pk=result.id)
    assert run.status == RunStatus.FAILED
    message = run.error["message"]
    assert "'tests.testapp.tasks.not_a_task' is a function, not a task; decorate it" in message


def test_started_and_finished_signals_carry_the_result(task_source):
    seen = []

    def record(sender, task_result, **kwargs):
        seen.append((task_result.id, task_result.status, task_result.attempts))

    task_started.connect(record)
    task_finished.connect(record)
    try:
        good, bad = tasks.add.enqueue(1, 1), tasks.fail.enqueue("no")
        drain()
    finally:
        task_started.disconnect(record)
        task_finished.disconnect(record)

    assert [entry for entry in seen if entry[0] == good.id] == [
        (good.id, TaskResultStatus.RUNNING, 1),
        (good.id, TaskResultStatus.SUCCESSFUL, 1),
    ]
    assert [entry for entry in seen if entry[0] == bad.id] == [
        (bad.id, TaskResultStatus.RUNNING, 1),
        (bad.id, TaskResultStatus.RUNNING, 2),
        (bad.id, TaskResultStatus.RUNNING, 3),
        (bad.id, TaskResultStatus.FAILED, 3),
    ]


def test_a_failing_receiver_of_task_started_does_not_fail_the_task(task_source, caplog):
    def broken(sender, **kwargs):
        raise RuntimeError("metrics down")

    task_started.connect(broken)
    try:
        result = tasks.add.enqueue(1, 1)
        drain()
    finally:
        task_started.disconnect(broken)
    assert tasks.add.get_result(result.id).status == TaskResultStatus.SUCCESSFUL
    assert "task_started receiver" in caplog.text and "metrics down" in caplog.text


def test_the_admin_shows_a_task_run_and_lists_its_function(task_source, admin_client):
    result = tasks.fail.enqueue("boom <b>")
    drain()
    run = FunctionRun.objects.get(pk=result.id)

    page = admin_client.get(run_url(run)).content.decode()
    assert readonly_value(page, "function_id") == "django-task:default:tests.testapp.tasks.fail"
    assert readonly_value(page, "status_badge") == "Failed"
    assert "ValueError: boom &lt;b&gt;" in page
    assert readonly_value(page, "started_by") == "event django/task.enqueued"

    # A fresh web process has not registered the function: its runs register it.
    default_registry.restore({})
    functions = admin_client.get(FUNCTIONS_URL).content.decode()
    assert 'data-function="django-task:default:tests.testapp.tasks.fail"' in functions
    assert "django task" in functions and "not registered" not in functions
    assert "retries: 2" in functions


def test_cancel_retry_and_rerun_work_on_task_runs(task_source):
    queued, failed = tasks.add.enqueue(1, 2), tasks.fail.enqueue("boom")
    assert inngest.cancel_run(queued.id)
    drain()
    queued.refresh()
    assert (queued.status, queued.attempts, queued.errors) == (TaskResultStatus.FAILED, 0, [])
    assert FunctionRun.objects.get(pk=queued.id).status == RunStatus.CANCELLED

    assert inngest.retry_run(failed.id)
    failed.refresh()
    # Queued again under the same id; the last error stays until an attempt replaces it.
    assert (failed.status, failed.attempts) == (TaskResultStatus.READY, 0)
    assert failed.errors[0].exception_class is ValueError
    drain()
    failed.refresh()
    assert (failed.status, failed.attempts) == (TaskResultStatus.FAILED, 3)

    again = tasks.add.get_result(inngest.rerun_run(queued.id))
    assert again.id != queued.id and again.args == [1, 2]
    drain()
    again.refresh()
    assert (again.status, again.return_value) == (TaskResultStatus.SUCCESSFUL, 3)


def test_a_project_with_only_tasks_gets_no_missing_functions_warning(task_source):
    default_registry.restore({})
    # W003 says a worker would claim nothing; with TASKS set it claims task runs.
    assert check_functions_registered() == []
