"""Shared fixtures: isolated registry, inngest_client, drain, worker subprocesses, live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test.utils import override_settings
from pytest_django.live_server_helper import LiveServer

import inngest_django as inngest
from inngest_django import clock
from inngest_django.testing import drain as _drain
from inngest_django.testing import isolated_registry
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = os.environ.get("INNGEST_DJANGO_TEST_DB") == "postgres"
    skip = pytest.mark.skip(reason="needs PostgreSQL (INNGEST_DJANGO_TEST_DB=postgres)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture
def registry() -> Iterator[inngest.Inngest]:
    """Functions a test registers are removed again afterwards."""
    with isolated_registry() as functions:
        yield functions


@pytest.fixture
def inngest_client(registry) -> inngest.Inngest:
    """Return an Inngest client; the functions it creates are removed after the test."""
    return inngest.Inngest(app_id="test")


@pytest.fixture
def drain():
    return _drain


@pytest.fixture
def wsgi_app() -> Iterator[Callable[..., Any]]:
    """Django's WSGI handler (for schemathesis), kept off the connection-closing signals.

    Every request runs inside the test's transaction, as with the test client; closing the
    connection at the end of a request would end that transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def advance_clock(monkeypatch) -> Callable[[float], None]:
    """Return `advance(seconds)`: moves the engine's clock on, for tests that only wait for time."""
    offset = {"seconds": 0.0}
    real_now, real_monotonic = clock.now, clock.monotonic
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(seconds=offset["seconds"]))
    monkeypatch.setattr(clock, "monotonic", lambda: real_monotonic() + offset["seconds"])

    def advance(seconds: float) -> None:
        offset["seconds"] += seconds

    return advance


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Start pytest-django's live server as its own fixture does, but with a STATIC_URL."""
    address = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    # tests.settings has no STATIC_URL, and Django's live server then fails every request
    # (its static handler parses None into bytes). The handler reads it once, at start.
    with override_settings(STATIC_URL="/static/"):
        server = LiveServer(address)
    try:
        yield server
    finally:
        server.stop()


class WorkerProcesses:
    """Starts `run_inngest_worker` subprocesses against the test database, and watches them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.journal_path = tmp_path / "journal.jsonl"
        self.processes: list[subprocess.Popen] = []
        self._logs: list[IO[str]] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        env["INNGEST_DJANGO_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        env["INNGEST_DJANGO_TEST_JOURNAL"] = str(self.journal_path)
        env["PYTHONPATH"] = str(ROOT)
        env.update(extra)
        return env

    def start(self, *args: str, **extra_env: str) -> subprocess.Popen:
        """Start a worker with these command-line flags and extra environment variables."""
        index = len(self.processes)
        log = open(self.tmp_path / f"worker-{index}.log", "w")  # noqa: SIM115 - closed in stop_all
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_inngest_worker", *args],
            cwd=ROOT,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        self._logs.append(log)
        return process

    def log(self, index: int) -> str:
        return (self.tmp_path / f"worker-{index}.log").read_text()

    def logs(self) -> str:
        """Return every worker's output, labelled, for failure messages."""
        return "\n".join(
            f"--- worker {index} (pid {process.pid}, exit {process.poll()}) ---\n{self.log(index)}"
            for index, process in enumerate(self.processes)
        )

    def journal(self) -> list[dict[str, Any]]:
        """Return the step calls the testapp functions journaled, committed or not."""
        if not self.journal_path.exists():
            return []
        return [json.loads(line) for line in self.journal_path.read_text().splitlines()]

    def wait_for(self, condition: Callable[[], Any], *, what: str, timeout: float = 20.0) -> Any:
        """Poll `condition` until it returns something truthy; fail with the logs at `timeout`."""
        return wait_for(condition, what=what, timeout=timeout, logs=self.logs)

    def wait_for_log(self, index: int, text: str, *, timeout: float = 20.0) -> None:
        what = f"{text!r} in worker {index}'s log"
        self.wait_for(lambda: text in self.log(index), what=what, timeout=timeout)

    def wait_for_exit(self, process: subprocess.Popen, *, timeout: float = 20.0) -> int:
        """Return the exit code, failing with the logs if the worker is still up at `timeout`."""
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker pid {process.pid} still running after {timeout} s\n{self.logs()}")

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL a worker: no cleanup, no rollback but the database's own."""
        process.kill()
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for log in self._logs:
            log.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def task_backend(registry, settings):
    """Return the django.tasks backend of tests.settings.TEST_TASKS, configured for this test."""
    from inngest_django.backends.tasks.framework import task_backends

    settings.TASKS = settings.TEST_TASKS
    return task_backends["default"]
