"""Workers keep healthy connections between rounds and passes, and close them when they stop."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

import inngest_django as inngest
from inngest_django.models import FunctionRun
from inngest_django.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def steps(inngest_client):
    @inngest_client.create_function(fn_id="two-steps", trigger=inngest.TriggerEvent(event="t/two"))
    def two_steps(ctx):
        return [ctx.step.run(key, lambda key=key: key) for key in ("a", "b")]

    return "test-two-steps"


def test_the_loop_keeps_its_connection_across_rounds(steps):
    # CONN_MAX_AGE is 0 here, which Django's close_old_connections() reads as "close now".
    assert not connection.settings_dict["CONN_MAX_AGE"]
    inngest.send([{"name": "t/two", "data": {}}] * 5)
    connection.ensure_connection()
    opened = connection.connection
    Worker(threads=0, until_idle=True).run()
    assert FunctionRun.objects.filter(function_id=steps, status="COMPLETED").count() == 5
    assert connection.connection is opened


@pytest.mark.postgres  # SQLite connections do not break, and Django does not probe them
def test_a_broken_connection_is_replaced_at_the_next_round(steps):
    inngest.send({"name": "t/two", "data": {}})
    connection.ensure_connection()
    broken = connection.connection
    connection.errors_occurred = True
    broken.close()  # as a server restart would leave it
    Worker(threads=0, until_idle=True).run()
    assert connection.connection is not broken
    assert FunctionRun.objects.get(function_id=steps).status == "COMPLETED"


@pytest.mark.postgres
def test_pool_threads_close_their_connections_when_the_worker_stops(steps):
    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = backends()
    inngest.send([{"name": "t/two", "data": {}}] * 6)
    Worker(threads=3, until_idle=True).run()
    assert FunctionRun.objects.filter(function_id=steps, status="COMPLETED").count() == 6
    # A server process ends a moment after its client closes the connection.
    deadline = time.monotonic() + 5
    while backends() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends() == before


def test_a_loop_in_a_thread_of_its_own_closes_its_connection_when_it_stops(steps):
    inngest.send([{"name": "t/two", "data": {}}] * 2)
    left_open = []

    def loop() -> None:
        Worker(threads=0, until_idle=True).run()
        left_open.extend(conn.alias for conn in connections.all() if conn.connection is not None)

    thread = threading.Thread(target=loop)
    thread.start()
    thread.join(30)
    assert FunctionRun.objects.filter(function_id=steps, status="COMPLETED").count() == 2
    # Otherwise its session stays open until the wrapper is collected: a test database with
    # a session left cannot be dropped.
    assert left_open == []


def test_a_connection_the_caller_had_open_stays_open(steps):
    inngest.send({"name": "t/two", "data": {}})
    other = connections["default"]
    other.ensure_connection()
    Worker(threads=0, until_idle=True).run()
    assert other.connection is not None
