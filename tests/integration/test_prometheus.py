"""The Prometheus endpoint: its figures over real runs and workers, and its bearer token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def samples(response) -> dict[tuple[str, tuple], float]:
    """Return {(name, sorted labels): value} from a scrape."""
    text = response.content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def figures(inngest_client, drain):
    """Ten runs of test-ok finished 1..10 s long a minute ago; two of test-later queued."""

    @inngest_client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="t/ok"))
    def ok(ctx):
        return "done"

    @inngest_client.create_function(fn_id="later", trigger=inngest.TriggerEvent(event="t/later"))
    def later(ctx):
        return "done"

    inngest_client.send([inngest.Event(name="t/ok") for _ in range(10)])
    drain()
    now = timezone.now()
    for index, run in enumerate(FunctionRun.objects.order_by("id")):
        started = now - timedelta(minutes=1)
        FunctionRun.objects.filter(pk=run.pk).update(
            started_at=started, finished_at=started + timedelta(seconds=index + 1)
        )
    inngest_client.send([inngest.Event(name="t/later") for _ in range(2)])
    dispatch_pending()
    FunctionRun.objects.filter(function_id="test-later").update(
        available_at=now - timedelta(seconds=120)
    )
    WorkerHeartbeat.objects.create(
        worker_id="w1",
        host="h1",
        pid=1,
        threads=2,
        started_at=now,
        last_heartbeat=now - timedelta(seconds=100),
        heartbeat_seconds=10,
        runs_in_hand=1,
    )


def test_a_scrape_gives_rates_durations_backlog_and_workers(client, figures):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = samples(response)
    ok = (("function", "test-ok"),)
    later = (("function", "test-later"),)
    # Ten runs over a five-minute window: two a minute.
    assert found[("inngest_django_runs_started_per_minute", ok)] == pytest.approx(2.0)
    assert found[("inngest_django_runs_completed_per_minute", ok)] == pytest.approx(2.0)
    assert found[("inngest_django_runs_failed_per_minute", ok)] == 0
    quantile = (("function", "test-ok"), ("quantile", "0.95"))
    assert found[("inngest_django_run_duration_seconds", quantile)] == pytest.approx(9.55)
    assert found[("inngest_django_runs_queued", later)] == 2
    assert found[("inngest_django_runs_due", later)] == 2
    assert found[("inngest_django_oldest_due_run_age_seconds", later)] >= 120
    assert found[("inngest_django_workers", (("state", "stale"),))] == 1
    assert found[("inngest_django_workers", (("state", "running"),))] == 0
    worker = (("host", "h1"), ("worker_id", "w1"))
    assert found[("inngest_django_worker_heartbeat_age_seconds", worker)] >= 100


def test_executing_runs_with_a_concurrency_key_count_as_slots(client, inngest_client, drain):
    @inngest_client.create_function(
        fn_id="limited",
        trigger=inngest.TriggerEvent(event="t/limited"),
        concurrency=[inngest.Concurrency(limit=2)],
    )
    def limited(ctx):
        return "x"

    inngest_client.send([inngest.Event(name="t/limited") for _ in range(3)])
    drain()
    ids = list(FunctionRun.objects.order_by("id").values_list("id", flat=True))[:2]
    FunctionRun.objects.filter(pk__in=ids).update(
        status=RunStatus.RUNNING, locked_until=timezone.now() + timedelta(seconds=30)
    )
    found = samples(client.get("/metrics"))
    key = ("inngest_django_concurrency_slots_in_use", (("function", "test-limited"),))
    assert found[key] == 2


def test_with_a_metrics_token_a_scrape_needs_it_as_a_bearer_token(client, settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "METRICS_TOKEN": "s3cret"}
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret").status_code == 401
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert allowed.status_code == 200
    assert b"inngest_django_workers" in allowed.content


def test_only_get_is_allowed(client):
    assert client.post("/metrics").status_code == 405
