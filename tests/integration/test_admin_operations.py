"""The workers page (stale flag, times to the millisecond) and the metrics page (SVG charts)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

import inngest_django as inngest
from inngest_django.models import FunctionRun, WorkerHeartbeat
from tests.helpers import staff_client

pytestmark = pytest.mark.django_db

WORKERS_URL = "/admin/inngest_django/workerheartbeat/"
METRICS_URL = "/admin/inngest_django/workerheartbeat/metrics/"


def beat(worker_id: str, seconds_ago: float, **fields) -> WorkerHeartbeat:
    moment = timezone.now() - timedelta(seconds=seconds_ago)
    return WorkerHeartbeat.objects.create(
        worker_id=worker_id,
        host="web-1",
        pid=4242,
        threads=4,
        started_at=moment - timedelta(hours=1),
        last_heartbeat=moment,
        heartbeat_seconds=10,
        runs_in_hand=2,
        **fields,
    )


def states(page: str) -> dict[str, str]:
    rows = re.findall(r'<tr>.*?>([^<>]+)</a></th>.*?data-state="(\w+)"', page, re.S)
    return dict(rows)


def test_the_workers_page_flags_workers_that_missed_their_beats(admin_client):
    beat("fresh", 5)
    beat("stale", 31)
    beat("done", 600, stopped_at=timezone.now() - timedelta(seconds=600))
    page = admin_client.get(WORKERS_URL).content.decode()
    assert states(page) == {"fresh": "running", "stale": "stale", "done": "stopped"}
    assert "after 3 heartbeat intervals" in page
    fresh = WorkerHeartbeat.objects.get(pk="fresh").last_heartbeat
    # To the millisecond, and relative.
    assert timezone.localtime(fresh).strftime("%H:%M:%S.%f")[:-3] in page
    assert re.search(r"\d\.\d s ago", page)


def test_the_stale_threshold_follows_the_setting(admin_client, settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "WORKER_STALE_AFTER_BEATS": 5}
    beat("slow", 31)
    assert states(admin_client.get(WORKERS_URL).content.decode()) == {"slow": "running"}


def test_the_metrics_page_draws_charts_of_the_runs(admin_client, inngest_client, drain):
    @inngest_client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="t/ok"))
    def ok(ctx):
        return "done"

    @inngest_client.create_function(fn_id="other", trigger=inngest.TriggerEvent(event="t/other"))
    def other(ctx):
        return "done"

    inngest_client.send([inngest.Event(name="t/ok") for _ in range(3)] + [{"name": "t/other"}])
    drain()
    assert FunctionRun.objects.filter(status="COMPLETED").count() == 4
    assert reverse("admin:inngest_django_metrics") == METRICS_URL
    page = admin_client.get(METRICS_URL).content.decode()
    assert page.count('<svg class="inngest-chart"') == 2
    assert 'data-series="started"' in page and "<circle" in page
    assert re.search(r'data-figure="started"><div class="value">4<', page)
    rows = re.findall(
        r'data-function="([^"]+)">\s*<td><a href="([^"]+)">[^<]*</a></td><td>(\d+)<', page
    )
    assert [(slug, int(started)) for slug, _, started in rows] == [
        ("test-ok", 3),
        ("test-other", 1),
    ]
    narrowed = admin_client.get(html.unescape(rows[0][1]))
    narrowed_page = narrowed.content.decode()
    assert re.search(r'data-figure="started"><div class="value">3<', narrowed_page)
    assert 'id="metrics-functions"' not in narrowed_page
    quarter = admin_client.get(METRICS_URL, {"function": "test-ok", "minutes": "15"})
    assert re.search(r'data-figure="started"><div class="value">3<', quarter.content.decode())


def test_the_metrics_page_needs_the_view_run_permission(django_user_model):
    client = staff_client(django_user_model, "no-runs", "view_workerheartbeat")
    assert client.get(METRICS_URL).status_code == 403
    assert client.get(WORKERS_URL).status_code == 200
    allowed = staff_client(django_user_model, "runs", "view_functionrun")
    assert allowed.get(METRICS_URL).status_code == 200


def test_a_nul_in_the_function_filter_or_a_worker_id_is_no_server_error(admin_client):
    assert admin_client.get(METRICS_URL, {"function": "a\x00b"}).status_code == 200
    assert admin_client.get(f"{WORKERS_URL}%00/change/").status_code == 302


def test_the_metrics_page_refreshes_itself_only_when_asked(admin_client):
    assert 'http-equiv="refresh"' not in admin_client.get(METRICS_URL).content.decode()
    page = admin_client.get(METRICS_URL, {"refresh": "1"}).content.decode()
    assert '<meta http-equiv="refresh" content="30">' in page
    assert 'id="metrics-refresh" name="refresh" value="1" checked' in page
