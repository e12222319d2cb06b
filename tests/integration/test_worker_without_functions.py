"""A worker with no functions drops nothing: events and runs wait for a worker that has them."""

from __future__ import annotations

import logging

import pytest

import inngest_django as inngest
from inngest_django.checks import check_functions_registered
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.models import Event, FunctionRun
from inngest_django.registry import FunctionRegistry
from inngest_django.testing import drain, isolated_registry
from inngest_django.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

WRITE_ORDERS = "testapp-write-orders"


def send_orders() -> str:
    """Send one event that testapp's write-orders function triggers on; return its row id."""
    return inngest.send({"name": "testapp/orders", "data": {"steps": 1}})[0]


def test_a_worker_without_functions_leaves_events_and_runs_for_a_worker_with_them():
    queued_event = send_orders()
    dispatch_pending()
    run = FunctionRun.objects.get(event_id=queued_event, function_id=WRITE_ORDERS)
    new_event = send_orders()

    empty = Worker(threads=0, worker_id="empty", registry=FunctionRegistry())
    assert empty.run_once() == 0
    # Before, it marked the new event dispatched with no run, and failed the queued run as
    # "not registered".
    assert Event.objects.get(pk=new_event).dispatched_at is None
    run.refresh_from_db()
    assert (run.status, run.locked_by) == (RunStatus.QUEUED, "")

    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    started = FunctionRun.objects.get(event_id=new_event, function_id=WRITE_ORDERS)
    assert started.status == RunStatus.COMPLETED


def test_a_worker_without_functions_says_so_when_it_starts(caplog):
    with caplog.at_level(logging.WARNING, logger="inngest_django.worker"):
        Worker(threads=0, worker_id="empty", until_idle=True, registry=FunctionRegistry()).run()
    assert "Worker has no registered functions" in caplog.text
    assert "inngest_functions module" in caplog.text


def test_the_system_check_warns_when_no_function_is_registered():
    assert check_functions_registered() == []
    with isolated_registry() as registry:
        registry.restore({})
        [warning] = check_functions_registered()
    assert warning.id == "inngest_django.W003"
    assert "inngest_functions.py" in warning.hint
