"""Deferred runs under SIGKILL: a parent's finish and its outbox rows commit together, or not."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from django.db.models import Count, Exists, OuterRef

import inngest_django as inngest
from inngest_django.enums import FINISHED_STATUSES, RunStatus
from inngest_django.models import DeferIntent, FunctionRun, OutboxMessage
from tests.testapp.models import Order

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PARENT = "testapp-defer-cleanup"
CLEANUP = "testapp-cleanup"
PARENTS = 40
SHORT_LEASE = {"INNGEST_DJANGO_TEST_LEASE_SECONDS": "1.5"}


def check_outbox_invariants() -> int:
    """Assert what any instant must show; return how many parents have finished."""
    # Finishing is for good, and writes its outbox rows in the same commit: a parent finished
    # in this first read has its rows in the second, whatever commits in between.
    finished = set(
        FunctionRun.objects.filter(function_id=PARENT, status__in=FINISHED_STATUSES).values_list(
            "pk", flat=True
        )
    )
    # One statement, so one snapshot: each intent with its parent's status and outbox row.
    rows = (
        DeferIntent.objects.filter(run__function_id=PARENT)
        .annotate(has_outbox=Exists(OutboxMessage.objects.filter(intent=OuterRef("pk"))))
        .values_list("run_id", "run__status", "defer_id", "status", "has_outbox")
    )
    seen: dict[str, dict[str, tuple[str, bool]]] = {}
    for run_id, run_status, defer_id, status, has_outbox in rows:
        seen.setdefault(run_id, {})[defer_id] = (status, has_outbox)
        if run_status in FINISHED_STATUSES:
            continue
        assert not has_outbox, f"unfinished parent {run_id} has an outbox row for {defer_id}"
        assert status in ("PENDING", "CANCELLED"), (run_id, defer_id, status)
    for run_id in finished:
        assert seen.get(run_id) == {
            "keep": ("SCHEDULED", True),
            "drop": ("CANCELLED", False),
        }, f"finished parent {run_id} lacks its outbox rows: {seen.get(run_id)}"
    duplicates = (
        FunctionRun.objects.filter(defer_intent__isnull=False)
        .values("defer_intent")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not duplicates.exists(), "a defer produced two runs"
    return len(finished)


def test_sigkill_at_random_moments_never_splits_a_finish_from_its_outbox(workers):
    rng = random.Random(20261123)
    alive = [workers.start("--threads", "2", **SHORT_LEASE) for _ in range(2)]
    inngest.send([{"name": "testapp/defer", "data": {"pause_s": 0.02}} for _ in range(PARENTS)])
    kills = 0
    deadline = time.monotonic() + 90
    cleanups = FunctionRun.objects.filter(function_id=CLEANUP, status=RunStatus.COMPLETED)
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.1, 0.5))
        victim = alive.pop(rng.randrange(len(alive)))
        workers.kill(victim)
        kills += 1
        finished = check_outbox_invariants()
        alive.append(workers.start("--threads", "2", **SHORT_LEASE))
        # On a loaded machine a worker takes a while to start: kill no faster than they come up,
        # or no worker would ever get to work.
        workers.wait_for_log(len(workers.processes) - 1, "Worker started", timeout=30)
        if finished == PARENTS and cleanups.count() == PARENTS:
            break
    else:
        pytest.fail(f"runs did not finish in time after {kills} kills\n{workers.logs()}")
    assert kills >= 3, "the runs finished before the test could kill workers mid-way"

    check_outbox_invariants()
    parents = set(FunctionRun.objects.filter(function_id=PARENT).values_list("pk", flat=True))
    assert len(parents) == PARENTS
    assert set(FunctionRun.objects.filter(pk__in=parents).values_list("status", flat=True)) == {
        "COMPLETED"
    }
    # Each step's row and each kept cleanup's row exist exactly once; the dropped one never ran.
    expected = {(p, key) for p in parents for key in ("a", "b", "c", "cleanup-1")}
    orders = Counter(
        Order.objects.filter(reference__in=parents).values_list("reference", "step_key")
    )
    assert orders == dict.fromkeys(expected, 1)
    deferred = FunctionRun.objects.filter(function_id=CLEANUP)
    assert sorted(deferred.values_list("parent_run_id", flat=True)) == sorted(parents)
    assert set(deferred.values_list("defer_intent__defer_id", flat=True)) == {"keep"}
