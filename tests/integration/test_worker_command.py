"""`manage.py run_inngest_worker`: flags, signals and logging, in real subprocesses."""

from __future__ import annotations

import logging
import signal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from inngest_django.enums import RunStatus
from inngest_django.models import Event, FunctionRun
from tests.helpers import send_steps
from tests.testapp.models import Order

RECORD_STEPS = "testapp-record-steps"


def statuses() -> list[str]:
    runs = FunctionRun.objects.filter(function_id=RECORD_STEPS).order_by("status")
    return list(runs.values_list("status", flat=True))


def started(workers) -> bool:
    return any(entry["phase"] == "start" for entry in workers.journal())


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_threads_below_one_are_rejected_with_a_clear_error(threads):
    with pytest.raises(CommandError, match=r"--threads: must be 1 or more, not -?\d"):
        call_command("run_inngest_worker", f"--threads={threads}")


@pytest.mark.parametrize("verbosity", ["-1", "4", "x"])
def test_verbosity_outside_0_to_3_is_rejected(verbosity):
    with pytest.raises(CommandError, match=r"--verbosity"):
        call_command("run_inngest_worker", f"--verbosity={verbosity}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_until_idle_runs_everything_due_then_exits_zero(workers):
    send_steps(3, steps=2)
    worker = workers.start("--until-idle")
    assert workers.wait_for_exit(worker) == 0, workers.logs()
    assert statuses() == [RunStatus.COMPLETED] * 3
    assert not Event.objects.undispatched().exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_until_idle_exits_nonzero_when_the_database_fails(workers, tmp_path):
    # An empty SQLite file has no tables; a PostgreSQL database that does not exist refuses.
    if connection.vendor == "sqlite":
        missing = str(tmp_path / "empty.sqlite3")
    else:
        missing = "inngest_django_no_such_database"
    worker = workers.start("--until-idle", INNGEST_DJANGO_TEST_DB_NAME=missing)
    assert workers.wait_for_exit(worker) != 0
    assert "OperationalError" in workers.log(0)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_first_sigterm_lets_the_in_flight_run_finish_and_claims_nothing_new(workers):
    send_steps(2, steps=2, pause_s=0.5)
    worker = workers.start()
    workers.wait_for(lambda: started(workers), what="a step to start")
    worker.send_signal(signal.SIGTERM)
    assert workers.wait_for_exit(worker) == 0, workers.logs()
    assert statuses() == [RunStatus.COMPLETED, RunStatus.QUEUED]
    queued = FunctionRun.objects.get(function_id=RECORD_STEPS, status=RunStatus.QUEUED)
    assert (queued.started_at, queued.locked_by) == (None, "")
    log = workers.log(0)
    assert "finishing in-flight runs" in log
    assert log.index("finishing in-flight runs") < log.index("Run completed")
    assert "Worker stopped" in log


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_second_sigterm_exits_at_once_leaving_the_run_to_its_lease(workers):
    send_steps(steps=1, pause_s=30)
    worker = workers.start()
    workers.wait_for(lambda: started(workers), what="the step to start")
    worker.send_signal(signal.SIGTERM)
    workers.wait_for_log(0, "finishing in-flight runs")
    worker.send_signal(signal.SIGTERM)
    assert workers.wait_for_exit(worker, timeout=5) != 0
    # The step's transaction died with the process; the lease brings the run back later.
    assert statuses() == [RunStatus.RUNNING]
    assert not Order.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_default_verbosity_logs_one_line_per_run_state_change(workers):
    send_steps(steps=2)
    worker = workers.start("--until-idle")
    assert workers.wait_for_exit(worker) == 0, workers.logs()
    run_id = FunctionRun.objects.get(function_id=RECORD_STEPS).pk
    lines = [line for line in workers.log(0).splitlines() if f"run_id={run_id}" in line]
    assert [line.split(" INFO inngest_django.")[1].split(" run_id=")[0] for line in lines] == [
        "events Run queued",
        "executor Run started attempt=0",
        "executor Run completed",
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_verbosity_0_logs_nothing_for_runs_that_succeed(workers):
    send_steps(steps=2)
    worker = workers.start("--until-idle", "--verbosity", "0")
    assert workers.wait_for_exit(worker) == 0, workers.logs()
    assert statuses() == [RunStatus.COMPLETED]
    assert workers.log(0) == ""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_id_is_recorded_as_locked_by_and_logged(workers):
    send_steps(steps=1, pause_s=1)
    worker = workers.start("--worker-id", "worker-a", "--until-idle")
    workers.wait_for(
        lambda: FunctionRun.objects.filter(status=RunStatus.RUNNING, locked_by="worker-a").exists(),
        what="the run to be locked by worker-a",
    )
    assert workers.wait_for_exit(worker) == 0, workers.logs()
    assert "Worker started worker_id=worker-a " in workers.log(0)
    assert statuses() == [RunStatus.COMPLETED]


@pytest.mark.django_db(transaction=True)
def test_call_command_runs_in_the_caller_leaving_its_logging_and_signals_alone():
    send_steps(steps=1)
    package_logger = logging.getLogger("inngest_django")
    before = (
        [signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)],
        list(package_logger.handlers),
        package_logger.propagate,
    )
    call_command("run_inngest_worker", "--until-idle")
    assert statuses() == [RunStatus.COMPLETED]
    after = (
        [signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)],
        list(package_logger.handlers),
        package_logger.propagate,
    )
    assert after == before
