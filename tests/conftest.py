"""Shared fixtures: an isolated function registry, a client, drain, worker subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

import inngest_django as inngest
from inngest_django.testing import drain as _drain
from inngest_django.testing import isolated_registry

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
def client(registry) -> inngest.Inngest:
    return inngest.Inngest(app_id="test")


@pytest.fixture
def drain():
    return _drain


class WorkerProcesses:
    """Starts `run_inngest_worker` subprocesses against the test database."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        env["INNGEST_DJANGO_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        env["PYTHONPATH"] = str(ROOT)
        env.update(extra)
        return env

    def start(self, *args: str, **extra_env: str) -> subprocess.Popen:
        index = len(self.processes)
        log = open(self.tmp_path / f"worker-{index}.log", "w")  # noqa: SIM115 - closed by OS
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_inngest_worker", *args],
            cwd=ROOT,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log(self, index: int) -> str:
        return (self.tmp_path / f"worker-{index}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()
