"""run_function and a real worker end a run the same way: they share the engine's rules."""

from __future__ import annotations

from typing import Any

import pytest

import inngest_django as inngest
from inngest_django.enums import FINISHED_STATUSES, RunStatus
from inngest_django.models import FunctionRun
from inngest_django.serialization import error_to_json
from inngest_django.testing import run_function
from tests.testapp import bad_input_functions

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# KeyboardInterrupt is left out on purpose: in the main thread with Python's own SIGINT handler
# it is a real Ctrl-C, which run_function (like drain()) lets through; worker threads fail it.
BASE_EXCEPTION_CASES = [
    f"{where}-{what}"
    for where in ("run", "step")
    for what in ("system-exit", "generator-exit", "boom")
]


def outcome_of_worker(workers, case: str) -> tuple[str, str, str]:
    """Return the status, error name and message a real worker process gives `case`."""
    event_id = inngest.send({"name": "bad/input", "data": {"case": case}})[0]
    runs = FunctionRun.objects.filter(event_id=event_id, status__in=FINISHED_STATUSES)
    run = workers.wait_for(runs.first, what=f"the run of case {case}")
    return run.status, run.error["name"], run.error["message"]


def outcome_of_run_function(case: str) -> tuple[str, str, str]:
    """Return the status, error name and message run_function gives `case`."""
    result = run_function(bad_input_functions.bad_input, data={"case": case})
    error: Any = error_to_json(result.error) if result.error is not None else {}
    return result.status, error.get("name", ""), error.get("message", "")


def test_a_base_exception_from_user_code_ends_the_run_alike_in_run_function_and_a_worker(
    workers,
):
    workers.start()
    for case in BASE_EXCEPTION_CASES:
        expected = outcome_of_worker(workers, case)
        assert expected[0] == RunStatus.FAILED, (case, expected)
        assert outcome_of_run_function(case) == expected, case
