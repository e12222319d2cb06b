"""Workers outlive a PostgreSQL restart: same processes, one log line per outage, no lost work."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.models import FunctionRun, StepRun
from tests.postgres_server import restart_postgres
from tests.testapp.models import Call, Order

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECORD_STEPS = "testapp-record-steps"
RUNS = 240
STEPS = 3
# Runs whose pass died with the database resume when their lease ends.
LEASE = {"INNGEST_DJANGO_TEST_LEASE_SECONDS": "3"}


def completed() -> int:
    return FunctionRun.objects.filter(function_id=RECORD_STEPS, status=RunStatus.COMPLETED).count()


def restart_when(workers, at_least: int, mode: str) -> None:
    """Restart the server once `at_least` runs have completed, with runs still in flight."""
    workers.wait_for(lambda: completed() >= at_least, what=f"{at_least} completed runs", timeout=60)
    assert completed() < RUNS, "the restart should land while runs are in flight"
    restart_postgres(mode=mode)
    # The restart dropped this connection too; the next query opens a new one.
    connection.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_workers_survive_a_postgres_restart_and_every_step_commits_once(workers, mode):
    processes = [workers.start("--threads", "2", **LEASE) for _ in range(2)]
    for index in range(len(processes)):
        workers.wait_for_log(index, "Listening for wake-ups")
    # Short pauses keep a steady stream of step transactions open when the server goes.
    inngest.send([{"name": "testapp/steps", "data": {"steps": STEPS, "pause_s": 0.03}}] * RUNS)
    restart_when(workers, RUNS // 4, mode)
    restart_when(workers, RUNS // 2, mode)
    workers.wait_for(lambda: completed() == RUNS, what="every run to complete", timeout=120)

    assert [process.poll() for process in processes] == [None, None], workers.logs()
    for index in range(len(processes)):
        log = workers.log(index)
        # The listener always sees the server go; each outage is one warning, then one recovery.
        assert log.count("Listener lost the database") == 2, log
        assert log.count("Listener reached the database again") == 2, log
        assert log.count("Listening for wake-ups") == 3, log
        # The loop backs off instead of logging every failed round.
        assert log.count("Worker loop lost the database") <= 2, log

    run_ids = set(FunctionRun.objects.filter(function_id=RECORD_STEPS).values_list("pk", flat=True))
    assert len(run_ids) == RUNS
    expected = {(run_id, f"s{index}") for run_id in run_ids for index in range(STEPS)}
    assert Counter(StepRun.objects.values_list("run_id", "step_key")) == dict.fromkeys(expected, 1)
    assert Counter(Order.objects.values_list("reference", "step_key")) == dict.fromkeys(expected, 1)
    assert Counter(Call.objects.values_list("run_id", "name")) == dict.fromkeys(expected, 1)
