"""The run list's time and retry columns, and the "Retrying" state apart from "Queued"."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest

import inngest_django as inngest
from inngest_django.admin.times import moment_text
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun
from tests.helpers import RUNS_URL, cells, raw_cells, readonly_value, run_url, status_notes

pytestmark = pytest.mark.django_db


@pytest.fixture
def retrying(inngest_client, drain):
    """Return a run waiting 5 minutes to retry its failed step, and one queued that never ran."""

    @inngest_client.create_function(
        fn_id="sync-stock", trigger=inngest.TriggerEvent(event="t/stock"), retries=3
    )
    def sync_stock(ctx):
        def pull():
            raise inngest.RetryAfterError("supplier <busy>", timedelta(minutes=5))

        ctx.step.run("pull", pull)

    @inngest_client.create_function(fn_id="tidy-up", trigger=inngest.TriggerEvent(event="t/tidy"))
    def tidy_up(ctx):
        return "tidy"

    inngest_client.send(inngest.Event(name="t/stock"))
    drain()
    inngest_client.send(inngest.Event(name="t/tidy"))
    dispatch_pending()
    return SimpleNamespace(
        retrying=FunctionRun.objects.get(function_id="test-sync-stock"),
        queued=FunctionRun.objects.get(function_id="test-tidy-up"),
    )


def row_of(page: str, field: str) -> dict[str, str]:
    """Return a list column's text by run id."""
    return dict(zip(cells(page, "id"), cells(page, field), strict=True))


def test_fixture_retrying_run_is_queued_with_a_failed_attempt(retrying):
    assert retrying.retrying.status == "QUEUED" and retrying.retrying.attempt == 1
    assert retrying.retrying.error["message"] == "supplier <busy>"
    assert retrying.queued.status == "QUEUED" and retrying.queued.attempt == 0


def test_run_list_shows_a_retrying_run_as_retrying_not_queued(admin_client, retrying):
    page = admin_client.get(RUNS_URL).content.decode()
    notes = status_notes(page)
    assert notes[retrying.retrying.pk] == "Retrying"
    assert notes[retrying.queued.pk] == "Queued"


def test_run_list_shows_attempt_next_attempt_and_last_error(admin_client, runs, retrying):
    page = admin_client.get(RUNS_URL).content.decode()
    attempts = row_of(page, "attempt_of")
    assert attempts[retrying.retrying.pk] == "2 / 4"
    assert attempts[retrying.queued.pk] == "1 / 5"
    assert attempts[runs.completed.pk] == "-"
    next_attempts = row_of(page, "next_attempt")
    assert re.fullmatch(r"in [45] min", next_attempts[retrying.retrying.pk])
    assert next_attempts[retrying.queued.pk].startswith("due ")
    assert next_attempts[runs.failed.pk] == "-"
    errors = row_of(page, "last_error")
    assert errors[retrying.retrying.pk] == "RetryAfterError: supplier <busy>"
    assert errors[runs.failed.pk] == "NonRetriableError: card <declined>"
    assert errors[runs.completed.pk] == "-"
    # Escaped, with the exact moment of the next attempt in its tooltip.
    cell = dict(zip(cells(page, "id"), raw_cells(page, "next_attempt"), strict=True))
    assert moment_text(retrying.retrying.available_at) in cell[retrying.retrying.pk]
    assert "supplier &lt;busy&gt;" in page


def test_run_list_shows_times_to_the_millisecond(admin_client, runs):
    page = admin_client.get(RUNS_URL).content.decode()
    created = row_of(page, "created")
    assert created[runs.completed.pk] == moment_text(runs.completed.created_at)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", created[runs.completed.pk])
    assert row_of(page, "finished")[runs.completed.pk] == moment_text(runs.completed.finished_at)
    assert row_of(page, "finished")[runs.sleeping.pk] == "-"


def test_run_page_shows_times_to_the_millisecond_and_the_next_attempt(admin_client, retrying):
    run = retrying.retrying
    page = admin_client.get(run_url(run)).content.decode()
    assert readonly_value(page, "created") == moment_text(run.created_at)
    assert readonly_value(page, "due_at") == moment_text(run.available_at)
    assert re.fullmatch(r"in [45] min", readonly_value(page, "next_attempt"))
    assert readonly_value(page, "attempt_of") == "2 / 4"
    assert readonly_value(page, "status_badge") == "Retrying"


def test_status_filter_offers_retrying_and_splits_it_from_queued(admin_client, runs, retrying):
    page = admin_client.get(RUNS_URL).content.decode()
    assert "?status__exact=RETRYING" in page
    retrying_page = admin_client.get(RUNS_URL, {"status__exact": "RETRYING"}).content.decode()
    assert cells(retrying_page, "id") == [retrying.retrying.pk]
    queued_page = admin_client.get(RUNS_URL, {"status__exact": "QUEUED"}).content.decode()
    assert cells(queued_page, "id") == [retrying.queued.pk]
    failed_page = admin_client.get(RUNS_URL, {"status__exact": "FAILED"}).content.decode()
    assert cells(failed_page, "id") == [runs.failed.pk]
    # Display only: the stored status is untouched.
    assert FunctionRun.objects.filter(status="RETRYING").count() == 0


def test_operator_retry_of_a_failed_run_shows_it_retrying(admin_client, runs):
    FunctionRun.reopen_failed(runs.failed.pk, now=runs.failed.finished_at)
    page = admin_client.get(RUNS_URL, {"status__exact": "RETRYING"}).content.decode()
    assert cells(page, "id") == [runs.failed.pk]
