"""Chaos: a worker fleet under SIGKILLs (and a PostgreSQL restart) loses and doubles nothing."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import QuerySet

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.models import DeferIntent, FunctionRun, OutboxMessage, StepRun
from tests.chaos.controller import ChaosController, ChaosReport
from tests.chaos.django_q_fleet import DjangoQChaos
from tests.chaos.journal import Attempt, overlapping, read_attempts
from tests.testapp.chaos_functions import DROPPED, JOURNAL_DIR_ENV, KEPT, STEP_KEYS
from tests.testapp.models import ChaosRow

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PARENT = "chaos-steps"
CLEANUP = "chaos-cleanup"
CLEANUP_STEP = "write"
KEPT_ROW = f"cleanup-{KEPT}"


@dataclass(frozen=True)
class Scenario:
    """The size of one chaos run."""

    vendor: str  # the database it runs on: the other pass skips it
    runs: int  # runs of chaos-steps; each defers one chaos-cleanup run more
    workers: int  # worker processes kept running
    threads: int
    lease_seconds: float
    restart_db: bool  # restart PostgreSQL once half the runs are done
    pause_s: float  # how long each step holds its transaction open
    timeout: float  # seconds for every run to finish, chaos included


POSTGRES = Scenario(
    vendor="postgresql",
    runs=1000,
    workers=3,
    threads=2,
    lease_seconds=2.0,
    restart_db=True,
    pause_s=0.01,
    timeout=240,
)
# One writer at a time: fewer, smaller, and no restart (there is no server to restart).
SQLITE = Scenario(
    vendor="sqlite",
    runs=200,
    workers=2,
    threads=2,
    lease_seconds=2.0,
    restart_db=False,
    pause_s=0.01,
    timeout=150,
)


def chaos_runs(function_id: str) -> QuerySet[FunctionRun]:
    return FunctionRun.objects.filter(function_id=function_id)


def completed_runs() -> int:
    return FunctionRun.objects.filter(
        function_id__in=(PARENT, CLEANUP), status=RunStatus.COMPLETED
    ).count()


def settled() -> bool:
    """Return True once nothing is left to relay or finish (so nothing can still appear)."""
    unfinished = FunctionRun.objects.filter(function_id__in=(PARENT, CLEANUP)).exclude(
        status=RunStatus.COMPLETED
    )
    return not unfinished.exists() and not OutboxMessage.objects.filter(relayed_at=None).exists()


def check_runs_and_rows(scenario: Scenario) -> dict[str, str]:
    """Assert every run completed and each step wrote its row once; return cleanup -> parent."""
    parents = set(chaos_runs(PARENT).values_list("pk", flat=True))
    assert len(parents) == scenario.runs
    assert Counter(chaos_runs(PARENT).values_list("status", flat=True)) == {
        RunStatus.COMPLETED: scenario.runs
    }
    # Plain rows, no unique key: a step committed twice would show as a count of 2.
    expected_rows = {(parent, key) for parent in parents for key in (*STEP_KEYS, KEPT_ROW)}
    rows = Counter(ChaosRow.objects.values_list("run_id", "step_key"))
    assert rows == dict.fromkeys(expected_rows, 1), {k: n for k, n in rows.items() if n != 1}

    # Each parent deferred "keep" and "drop" and cancelled "drop": one deferred run each.
    intents = defaultdict(dict)
    for run_id, defer_id, status in DeferIntent.objects.filter(run_id__in=parents).values_list(
        "run_id", "defer_id", "status"
    ):
        intents[run_id][defer_id] = status
    assert intents == {parent: {KEPT: "SCHEDULED", DROPPED: "CANCELLED"} for parent in parents}
    deferred = FunctionRun.objects.filter(defer_intent__isnull=False)
    assert Counter(deferred.values_list("defer_intent__defer_id", flat=True)) == {
        KEPT: scenario.runs
    }
    cleanups = dict(deferred.values_list("pk", "parent_run_id"))
    assert sorted(cleanups.values()) == sorted(parents)
    assert set(chaos_runs(CLEANUP).values_list("pk", flat=True)) == set(cleanups)
    assert set(chaos_runs(CLEANUP).values_list("status", flat=True)) == {RunStatus.COMPLETED}

    expected_memos = {(parent, key) for parent in parents for key in STEP_KEYS}
    expected_memos |= {(cleanup, CLEANUP_STEP) for cleanup in cleanups}
    memos = Counter(StepRun.objects.values_list("run_id", "step_key"))
    assert memos == dict.fromkeys(expected_memos, 1)
    assert not FunctionRun.objects.exclude(lease_token="").exists(), "a finished run kept a lease"
    return cleanups


def check_journal(
    attempts: list[Attempt], report: ChaosReport, cleanups: dict[str, str]
) -> Counter[str]:
    """Assert no run ran under two leases at once and rows came from their attempts; count."""
    assert attempts, "the chaos functions journaled nothing"
    assert all(attempt.token for attempt in attempts), "an attempt ran without a lease token"
    pairs = overlapping(attempts, gone_at=report.gone_at, now=time.time())
    assert not pairs, f"{len(pairs)} pairs of attempts overlapped under two leases: {pairs[:5]}"
    # A commit line can be lost to a SIGKILL between COMMIT and on_commit, never doubled.
    commits = Counter((a.run, a.step) for a in attempts if a.committed is not None)
    assert max(commits.values()) == 1
    # Each row was written by a process that ran that step's callable to its end.
    finishers: dict[tuple[str, str], set[int]] = defaultdict(set)
    for attempt in attempts:
        if attempt.ended is not None:
            run = cleanups.get(attempt.run, attempt.run)
            step = KEPT_ROW if attempt.run in cleanups else attempt.step
            finishers[run, step].add(attempt.pid)
    for run_id, step_key, pid in ChaosRow.objects.values_list("run_id", "step_key", "pid"):
        assert pid in finishers[run_id, step_key], (run_id, step_key, pid)
    return Counter(
        {
            "attempts": len(attempts),
            "cut short by SIGKILL": sum(a.ended is None for a in attempts),
            "rolled back": sum(a.ended is not None and a.committed is None for a in attempts),
            "steps run again": sum(
                n - 1 for n in Counter((a.run, a.step) for a in attempts).values()
            ),
        }
    )


def new_journal(tmp_path: Path) -> Path:
    """Return an empty directory the workers' step attempts are journalled into."""
    journal = tmp_path / "chaos-journal"
    journal.mkdir()
    return journal


def chaos_env(scenario: Scenario, journal: Path) -> dict[str, str]:
    return {
        "INNGEST_DJANGO_TEST_LEASE_SECONDS": str(scenario.lease_seconds),
        JOURNAL_DIR_ENV: str(journal),
    }


def send_parents(scenario: Scenario) -> int:
    """Send the scenario's parent runs; return how many runs must complete in all."""
    inngest.send(
        [
            {"name": "chaos/steps.requested", "data": {"pause_s": scenario.pause_s}}
            for _ in range(scenario.runs)
        ]
    )
    return 2 * scenario.runs  # each parent and its one deferred cleanup


def check_and_report(
    label: str,
    scenario: Scenario,
    report: ChaosReport,
    journal: Path,
    capsys: pytest.CaptureFixture[str],
) -> tuple[list[Attempt], Counter[str]]:
    """Check rows and journal, print the summary, and require that the chaos landed."""
    cleanups = check_runs_and_rows(scenario)
    attempts = read_attempts(journal)
    counts = check_journal(attempts, report, cleanups)
    with capsys.disabled():
        print(f"\n{label}: {report.summary()}; {dict(counts)}")
    # Workers died inside steps, and steps ran again elsewhere.
    assert report.kills >= 5, report.summary()
    assert counts["cut short by SIGKILL"] > 0
    return attempts, counts


# Above pytest.ini's 300 s, so the controller's own timeout fails first, with the workers' logs.
@pytest.mark.timeout(420)
@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(POSTGRES, id="postgres", marks=pytest.mark.postgres),
        pytest.param(SQLITE, id="sqlite"),
    ],
)
def test_fleet_under_sigkill_runs_every_step_once_and_each_run_under_one_lease_at_a_time(
    scenario: Scenario, workers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    if connection.vendor != scenario.vendor:
        pytest.skip(f"the {scenario.vendor} variant; this pass runs on {connection.vendor}")
    journal = new_journal(tmp_path)
    controller = ChaosController(
        workers,
        size=scenario.workers,
        start_args=("--threads", str(scenario.threads)),
        env=chaos_env(scenario, journal),
        seed=scenario.runs,
    )
    total = send_parents(scenario)
    report = controller.run(
        completed_runs,
        total=total,
        restart_db_at=total // 2 if scenario.restart_db else None,
        timeout=scenario.timeout,
    )
    workers.wait_for(settled, what="the outbox to be relayed and every run to finish")
    workers.stop_all()

    check_and_report(scenario.vendor, scenario, report, journal, capsys)
    assert report.restarts == int(scenario.restart_db)


# -- the django-q2 executor variant ------------------------------------------------------------
DJANGO_Q = Scenario(
    vendor="postgresql",
    runs=200,
    workers=2,  # clusters; one run_inngest_worker hands runs out to them
    threads=1,
    lease_seconds=2.0,
    restart_db=False,
    pause_s=0.01,
    timeout=240,
)


@pytest.mark.postgres
@pytest.mark.timeout(420)
def test_django_q_clusters_under_sigkill_run_every_step_once_under_one_lease_at_a_time(
    workers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    scenario = DJANGO_Q
    journal = new_journal(tmp_path)
    fleet = DjangoQChaos(
        workers, clusters=scenario.workers, env=chaos_env(scenario, journal), seed=scenario.runs
    )
    total = send_parents(scenario)
    try:
        report = fleet.run(completed_runs, total=total, timeout=scenario.timeout)
        workers.wait_for(settled, what="the outbox to be relayed and every run to finish")
    finally:
        fleet.stop_all()
        workers.stop_all()

    attempts, _ = check_and_report("django_q", scenario, report, journal, capsys)
    # The passes ran in the clusters' worker processes, never in the inngest worker.
    worker_pids = {process.pid for process in workers.processes}
    assert not {attempt.pid for attempt in attempts} & worker_pids
