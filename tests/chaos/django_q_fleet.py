"""The django-q2 chaos fleet: one worker handing runs out, two clusters executing them, SIGKILLs."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.chaos.controller import ChaosReport
from tests.clusters import DJANGO_Q_EXECUTOR, Clusters

if TYPE_CHECKING:
    from tests.conftest import WorkerProcesses

# Q_CLUSTER["workers"] in tests/settings.py: a cluster is up once this many have started.
CLUSTER_WORKERS = 2


class DjangoQChaos:
    """Keeps one `run_inngest_worker` and `clusters` qclusters running, killing one at a time.

    Each pause of `kill_every` seconds ends with a SIGKILL: of a whole cluster (its sentinel
    and every worker process) usually, of the inngest worker one time in `worker_odds`.
    """

    def __init__(
        self,
        workers: WorkerProcesses,
        *,
        clusters: int,
        env: dict[str, str],
        kill_every: tuple[float, float] = (1.0, 2.0),
        worker_odds: int = 4,
        seed: int = 0,
    ) -> None:
        self.workers = workers
        self.clusters = Clusters(workers)
        self.size = clusters
        self.env = {**DJANGO_Q_EXECUTOR, **env}
        self.kill_every = kill_every
        self.worker_odds = worker_odds
        self.rng = random.Random(seed)
        self.report = ChaosReport()
        self._worker: tuple[int, subprocess.Popen] | None = None
        self._alive: list[tuple[int, subprocess.Popen]] = []

    def _start_worker(self) -> None:
        process = self.workers.start("--threads", "1", **self.env)
        self._worker = (len(self.workers.processes) - 1, process)
        self.report.started += 1

    def _start_cluster(self) -> None:
        process = self.clusters.start(**self.env)
        self._alive.append((len(self.clusters.processes) - 1, process))
        self.report.started += 1

    def _all_up(self) -> bool:
        assert self._worker is not None
        index, _ = self._worker
        return "Worker started" in self.workers.log(index) and all(
            len(self.clusters.worker_pids(i)) >= CLUSTER_WORKERS for i, _ in self._alive
        )

    def _kill_something(self) -> None:
        assert self._worker is not None
        if self.rng.randrange(self.worker_odds) == 0:
            _, worker = self._worker
            self.workers.kill(worker)
            self.report.gone_at[worker.pid] = time.time()
            self._start_worker()
        else:
            index, cluster = self._alive.pop(self.rng.randrange(len(self._alive)))
            pids = self.clusters.worker_pids(index) | {cluster.pid}
            self.clusters.kill(cluster)
            # The journal names the cluster's worker processes, which died with the group.
            gone = time.time()
            for pid in pids:
                self.report.gone_at[pid] = gone
            self._start_cluster()
        self.report.kills += 1

    def _replace_exited(self) -> None:
        assert self._worker is not None
        index, worker = self._worker
        if worker.poll() is not None:
            self.report.unexpected_exits.append((worker.pid, worker.returncode, ""))
            self.report.gone_at[worker.pid] = time.time()
            self._start_worker()
        for index, cluster in list(self._alive):
            if cluster.poll() is not None:
                self._alive.remove((index, cluster))
                self.report.unexpected_exits.append((cluster.pid, cluster.returncode, ""))
                self._start_cluster()

    def run(self, progress: Callable[[], int], *, total: int, timeout: float) -> ChaosReport:
        """Kill and replace processes until `progress()` reaches `total`, within `timeout`."""
        began = time.monotonic()
        self._start_worker()
        for _ in range(self.size):
            self._start_cluster()
        next_kill = began + self.rng.uniform(*self.kill_every)
        try:
            while (done := progress()) < total:
                self._replace_exited()
                now = time.monotonic()
                # No faster than replacements come up, or nothing would be left working.
                if now >= next_kill and self._all_up():
                    self._kill_something()
                    next_kill = now + self.rng.uniform(*self.kill_every)
                if now - began > timeout:
                    pytest.fail(
                        f"{done} of {total} done after {timeout:.0f} s; {self.report.summary()}"
                        f"\n{self.workers.logs()}\n{self.clusters.logs()}"
                    )
                time.sleep(0.1)
        finally:
            self.report.seconds = time.monotonic() - began
        return self.report

    def stop_all(self) -> None:
        """Kill every cluster; the `workers` fixture stops the workers."""
        self.clusters.stop_all()
