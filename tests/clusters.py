"""Start and kill `manage.py qcluster` processes for the django_q executor's tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
# Worker and cluster subprocesses hand runs to django-q2 (tests/settings.py reads this).
DJANGO_Q_EXECUTOR = {"INNGEST_DJANGO_TEST_EXECUTOR": "django_q"}


class Clusters:
    """Starts `manage.py qcluster` processes, each in its own process group."""

    def __init__(self, workers: Any) -> None:
        self.workers = workers
        self.processes: list[subprocess.Popen] = []
        self._logs: list[Any] = []

    def start(self, **extra_env: str) -> subprocess.Popen:
        index = len(self.processes)
        log = open(self._log_path(index), "w")  # noqa: SIM115 - closed in stop_all
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=self.workers.env(**{**DJANGO_Q_EXECUTOR, **extra_env}),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own group, so one killpg takes the sentinel, pusher, monitor and workers.
            start_new_session=True,
        )
        self.processes.append(process)
        self._logs.append(log)
        return process

    def _log_path(self, index: int) -> Path:
        return self.workers.tmp_path / f"cluster-{index}.log"

    def log(self, index: int) -> str:
        return self._log_path(index).read_text()

    def worker_pids(self, index: int) -> set[int]:
        """Return the pids of the cluster's django-q workers, from its log."""
        return {int(pid) for pid in re.findall(r"ready for work at (\d+)", self.log(index))}

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the whole cluster, as a lost machine would stop it."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- cluster {index} (pid {process.pid}, exit {process.poll()}) ---\n{self.log(index)}"
            for index, process in enumerate(self.processes)
        )

    def wait_for(self, condition: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
        """Poll `condition` until truthy; fail with every worker and cluster log at `timeout`."""
        return wait_for(
            condition,
            what=what,
            timeout=timeout,
            logs=lambda: f"{self.workers.logs()}\n{self.logs()}",
        )

    def wait_until_ready(self, index: int) -> set[int]:
        """Wait for the cluster's two workers to start; return their pids."""
        return self.wait_for(
            lambda: len(self.worker_pids(index)) == 2 and self.worker_pids(index),
            what=f"cluster {index}'s workers",
        )

    def stop_all(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for log in self._logs:
            log.close()
