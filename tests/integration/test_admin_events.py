"""The event list and event page, with the runs each event started."""

from __future__ import annotations

import html

import pytest

from tests.helpers import EVENTS_URL, cells, event_url, run_url

pytestmark = pytest.mark.django_db


def test_event_list_shows_names_producer_ids_and_run_counts(admin_client, runs):
    page = admin_client.get(EVENTS_URL).content.decode()
    assert "t/ordered" in page and "order-7" in page
    assert "inngest/function.failed" in page
    names, counts = cells(page, "id"), cells(page, "run_count")
    assert dict(zip(names, counts, strict=True))[runs.failed.event_id] == "1"


def test_event_page_escapes_data_and_lists_the_runs_it_started(admin_client, runs):
    page = admin_client.get(event_url(runs.completed.event)).content.decode()
    assert html.escape('"sku": "<script>alert(1)</script>"') in page
    assert "<script>alert(1)" not in page
    assert run_url(runs.completed) in page
    assert "test-import-images" in page and ">Completed</span>" in page
