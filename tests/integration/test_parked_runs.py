"""Runs of a full concurrency key are parked out of the claim's way and woken as slots free."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

import inngest_django as inngest
from inngest_django.engine import execute_run
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = timedelta(minutes=1)
# How long a parked run stays out of the scan if no slot frees: a backstop of five leases.
PARKED_FOR = LEASE * 5


@pytest.fixture
def inngest_client(inngest_client: inngest.Inngest) -> inngest.Inngest:
    """A client whose registry holds only the per-user limited function."""
    inngest_client.registry.restore({})

    @inngest_client.create_function(
        fn_id="per-user",
        trigger=inngest.TriggerEvent(event="test/job"),
        concurrency=[inngest.Concurrency(limit=1, key="event.data.user")],
    )
    def per_user(ctx):
        return ctx.step.run("work", lambda: ctx.event.data["n"])

    return inngest_client


def queue(client: inngest.Inngest, *users: str) -> list[str]:
    """Send one job per user given (in order) and turn them into queued runs; return run ids."""
    inngest.send([{"name": "test/job", "data": {"user": u, "n": n}} for n, u in enumerate(users)])
    dispatch_pending(registry=client.registry)
    return list(FunctionRun.objects.order_by("available_at", "id").values_list("pk", flat=True))


def claim(limit: int = 1, token: str = "t") -> tuple[list[str], timezone.datetime]:
    with transaction.atomic():
        now = timezone.now()
        ids = FunctionRun.objects.claim_limited(
            worker_id="w", lease_token=token, limit=limit, now=now, lease_until=now + LEASE
        )
    return ids, now


def parked() -> list[str]:
    return list(
        FunctionRun.objects.filter(parked_from__isnull=False)
        .order_by("parked_from", "id")
        .values_list("pk", flat=True)
    )


def test_a_claim_parks_the_runs_of_a_full_key_and_takes_a_free_one(inngest_client):
    a1, a2, a3, b1 = queue(inngest_client, "a", "a", "a", "b")
    due_before = dict(FunctionRun.objects.values_list("pk", "available_at"))

    assert claim(token="first")[0] == [a1]
    ids, now = claim(token="second")

    assert ids == [b1]
    assert parked() == [a2, a3]
    for run in FunctionRun.objects.filter(pk__in=[a2, a3]):
        # Their place in the queue is kept; they are out of the scan until a slot frees.
        assert run.parked_from == due_before[run.pk]
        assert run.available_at == now + PARKED_FOR
        assert run.status == RunStatus.QUEUED


def test_the_run_that_frees_a_slot_wakes_the_oldest_parked_run_at_its_old_place(inngest_client):
    a1, a2, a3, _ = queue(inngest_client, "a", "a", "a", "b")
    due_before = dict(FunctionRun.objects.values_list("pk", "available_at"))
    claim(token="first")
    claim(token="second")

    execute_run(a1, lease_token="first", registry=inngest_client.registry)

    a2_row = FunctionRun.objects.get(pk=a2)
    assert (a2_row.parked_from, a2_row.available_at) == (None, due_before[a2])
    assert parked() == [a3]
    assert claim(token="third")[0] == [a2]


def test_parked_runs_all_complete_one_at_a_time(inngest_client, drain):
    queue(inngest_client, *["a"] * 5, "b")
    drain(registry=inngest_client.registry)
    runs = FunctionRun.objects.all()
    assert {run.status for run in runs} == {RunStatus.COMPLETED}
    assert not parked()
    # One at a time: each of user a's runs started after the one before it finished.
    a_runs = sorted((r for r in runs if r.event.data["user"] == "a"), key=lambda r: r.started_at)
    for before, after in itertools.pairwise(a_runs):
        assert after.started_at >= before.finished_at


def test_a_run_asked_to_cancel_is_not_parked(inngest_client):
    _, a2, _ = queue(inngest_client, "a", "a", "b")
    claim(token="first")
    FunctionRun.request_cancel(a2, now=timezone.now(), reason="test")
    claim(token="second")
    assert a2 not in parked()


def claim_at(at: timezone.datetime, token: str, limit: int = 1) -> list[str]:
    with transaction.atomic():
        return FunctionRun.objects.claim_limited(
            worker_id="w2", lease_token=token, limit=limit, now=at, lease_until=at + LEASE
        )


def test_a_parked_run_is_looked_at_again_after_the_backstop_and_keeps_its_place(inngest_client):
    a1, a2, _ = queue(inngest_client, "a", "a", "b")
    first_due = FunctionRun.objects.get(pk=a2).available_at
    claim(token="first")
    _, now = claim(token="second")
    assert parked() == [a2]
    later = now + PARKED_FOR + timedelta(seconds=1)

    # Its key still full (the holders' heartbeats renewed their leases): parked again, in place.
    FunctionRun.objects.filter(status=RunStatus.RUNNING).update(
        locked_until=later + LEASE, available_at=later + LEASE
    )
    assert claim_at(later, "third") == []
    run = FunctionRun.objects.get(pk=a2)
    assert (run.parked_from, run.available_at) == (first_due, later + PARKED_FOR)

    # The holder's worker died instead: its run resumes first and takes the slot back.
    FunctionRun.objects.filter(pk=a1).update(locked_until=later, available_at=later)
    even_later = later + LEASE + timedelta(seconds=1)
    assert claim_at(even_later, "fourth") == [a1]
    assert FunctionRun.objects.get(pk=a2).status == RunStatus.QUEUED
