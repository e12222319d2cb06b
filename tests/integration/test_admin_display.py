"""Status badges and errors as the admin pages show them: colours, escaping, tracebacks."""

from __future__ import annotations

import pytest

from tests.helpers import RUNS_URL, cells, run_url

pytestmark = pytest.mark.django_db


def test_run_list_shows_every_run_with_a_coloured_status_badge(admin_client, runs):
    page = admin_client.get(RUNS_URL).content.decode()
    for run in (runs.completed, runs.failed, runs.sleeping):
        assert run_url(run) in page
        assert run.function_id in page
    assert "background: #198754" in page and ">Completed</span>" in page
    assert "background: #dc3545" in page and ">Failed</span>" in page
    assert "background: #6f42c1" in page and ">Sleeping</span>" in page


def test_failed_run_page_shows_error_name_message_and_stack(admin_client, runs):
    page = admin_client.get(run_url(runs.failed)).content.decode()
    assert "<strong>NonRetriableError</strong>: card &lt;declined&gt;" in page
    assert "card <declined>" not in page
    assert "Traceback (most recent call last)" in page
    # The failed step's row in the inline carries the error too, under a Failed badge.
    assert cells(page, "step_key") == ["charge"]
    assert cells(page, "status_badge") == ["Failed"]
    assert cells(page, "output_or_error")[0].startswith("NonRetriableError: card <declined>")
