"""The chaos controller: SIGKILL a random worker every second or so, replace it, restart the DB."""

from __future__ import annotations

import random
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from django.db import connection

from tests.postgres_server import restart_postgres

if TYPE_CHECKING:
    from tests.conftest import WorkerProcesses


@dataclass
class ChaosReport:
    """What the controller did, and what the fleet did without being asked."""

    started: int = 0
    kills: int = 0
    restarts: int = 0
    # (pid, exit code, last lines of its log) of workers that exited without being killed.
    unexpected_exits: list[tuple[int, int, str]] = field(default_factory=list)
    # When each worker process was gone for sure: killed and reaped, or found exited.
    gone_at: dict[int, float] = field(default_factory=dict)
    restarted_at_progress: int | None = None
    seconds: float = 0.0
    # Seconds from each worker's start to its "Worker started" line.
    boot_seconds: list[float] = field(default_factory=list)

    def summary(self) -> str:
        exits = ", ".join(f"pid {pid} exit {code}" for pid, code, _ in self.unexpected_exits)
        boot = statistics.median(self.boot_seconds) if self.boot_seconds else 0.0
        restarts = f"{self.restarts} database restarts"
        if self.restarts:
            restarts += f" (at {self.restarted_at_progress} done)"
        return (
            f"chaos: {self.seconds:.0f} s, {self.started} workers started (median start "
            f"{boot:.1f} s), {self.kills} SIGKILLs, {restarts}, "
            f"{len(self.unexpected_exits)} unexpected exits{': ' + exits if exits else ''}"
        )


class ChaosController:
    """Keeps `size` workers running while killing one at random every `kill_every` seconds.

    Args:
        workers: The `workers` fixture, which starts and reaps the processes.
        size: Workers kept running.
        start_args: Flags of each `run_inngest_worker`.
        env: Extra environment of each worker.
        kill_every: Bounds of the uniform pause between two kills, in seconds.
        seed: Seeds the choice of victims and pauses, so a failing schedule can be replayed
            (timings still vary from run to run).
    """

    def __init__(
        self,
        workers: WorkerProcesses,
        *,
        size: int,
        start_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        kill_every: tuple[float, float] = (0.6, 1.4),
        seed: int = 0,
    ) -> None:
        self.workers = workers
        self.size = size
        self.start_args = start_args
        self.env = env or {}
        self.kill_every = kill_every
        self.rng = random.Random(seed)
        self.report = ChaosReport()
        self._alive: list[tuple[int, subprocess.Popen]] = []
        self._started_at: dict[int, float] = {}
        self._booted: set[int] = set()

    def _start(self) -> None:
        process = self.workers.start(*self.start_args, **self.env)
        index = len(self.workers.processes) - 1
        self._alive.append((index, process))
        self._started_at[index] = time.monotonic()
        self.report.started += 1

    def _up(self) -> list[tuple[int, subprocess.Popen]]:
        """Return the live workers done starting, noting how long each took to start."""
        up = []
        for index, process in self._alive:
            if process.poll() is not None:
                continue
            if index not in self._booted:
                if "Worker started" not in self.workers.log(index):
                    continue
                self._booted.add(index)
                self.report.boot_seconds.append(time.monotonic() - self._started_at[index])
            up.append((index, process))
        return up

    def _replace_exited(self) -> None:
        for index, process in list(self._alive):
            code = process.poll()
            if code is None:
                continue
            # Exited on its own (a crash at a database restart, say): a supervisor would
            # start it again, and so does the controller; the test reports it.
            self._alive.remove((index, process))
            self.report.gone_at[process.pid] = time.time()
            tail = "\n".join(self.workers.log(index).splitlines()[-15:])
            self.report.unexpected_exits.append((process.pid, code, tail))
            self._start()

    def _kill_one(self, up: list[tuple[int, subprocess.Popen]]) -> None:
        index, victim = up[self.rng.randrange(len(up))]
        self.workers.kill(victim)
        # Reaped: nothing of it runs any more.
        self.report.gone_at[victim.pid] = time.time()
        self._alive.remove((index, victim))
        self.report.kills += 1
        self._start()

    def logs(self, lines: int = 40) -> str:
        """Return the last lines of each live worker's log and of each that exited by itself."""
        exited = "\n".join(
            f"--- exited pid {pid} (exit {code}) ---\n{tail}"
            for pid, code, tail in self.report.unexpected_exits
        )
        live = "\n".join(
            f"--- live pid {process.pid} ---\n"
            + "\n".join(self.workers.log(index).splitlines()[-lines:])
            for index, process in self._alive
        )
        return f"{exited}\n{live}"

    def _restart_database(self, progress: int) -> None:
        restart_postgres()
        # The test's own connection died with the server; the next query opens a new one.
        connection.close()
        self.report.restarts += 1
        self.report.restarted_at_progress = progress

    def run(
        self,
        progress: Callable[[], int],
        *,
        total: int,
        restart_db_at: int | None = None,
        timeout: float,
    ) -> ChaosReport:
        """Kill and replace workers until `progress()` reaches `total`; restart PostgreSQL once.

        The restart comes once `progress()` reaches `restart_db_at`. Fails the test with the
        workers' logs if `total` is not reached within `timeout` seconds.
        """
        began = time.monotonic()
        deadline = began + timeout
        for _ in range(self.size):
            self._start()
        next_kill = began + self.rng.uniform(*self.kill_every)
        while True:
            done = progress()
            if done >= total:
                break
            if restart_db_at is not None and not self.report.restarts and done >= restart_db_at:
                self._restart_database(done)
            self._replace_exited()
            now = time.monotonic()
            if now >= next_kill:
                up = self._up()
                # No faster than replacements come up: on a loaded machine a worker takes
                # seconds to start, and killing booting workers would leave none working.
                if len(up) == self.size:
                    self._kill_one(up)
                    next_kill = now + self.rng.uniform(*self.kill_every)
            if now > deadline:
                self.report.seconds = now - began
                pytest.fail(
                    f"{done} of {total} done after {timeout:.0f} s; {self.report.summary()}\n"
                    f"{self.logs()}"
                )
            time.sleep(0.1)
        self.report.seconds = time.monotonic() - began
        return self.report
