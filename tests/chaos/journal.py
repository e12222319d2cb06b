"""Read the step attempts the chaos functions journaled, and find attempts that overlapped."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Attempt:
    """One call of a step callable in one worker process, from its journal lines."""

    attempt: str
    run: str
    step: str
    token: str
    pid: int
    started: float
    ended: float | None  # the callable returned or raised; None if its process died first
    committed: float | None  # the step's transaction committed (its on_commit ran)

    def until(self, gone_at: dict[int, float], now: float) -> float:
        """Return when this attempt stopped: its commit, its end, or its process's death."""
        if self.ended is not None:
            return max(self.ended, self.committed or self.ended)
        # Killed inside the callable: it ran until its process was gone.
        return gone_at.get(self.pid, now)


def read_attempts(directory: Path) -> list[Attempt]:
    """Return every attempt journaled in `directory` (one file per worker process)."""
    lines: dict[str, dict[str, float]] = defaultdict(dict)
    marks: dict[str, dict[str, object]] = {}
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            lines[entry["attempt"]][entry["phase"]] = entry["t"]
            marks.setdefault(entry["attempt"], entry)
    attempts = []
    for key, phases in lines.items():
        mark = marks[key]
        if "start" not in phases:
            raise AssertionError(f"attempt {key} journaled {sorted(phases)} but no start")
        attempts.append(
            Attempt(
                attempt=key,
                run=str(mark["run"]),
                step=str(mark["step"]),
                token=str(mark["token"]),
                pid=int(str(mark["pid"])),
                started=phases["start"],
                ended=phases.get("end"),
                committed=phases.get("commit"),
            )
        )
    return sorted(attempts, key=lambda attempt: attempt.started)


def overlapping(
    attempts: list[Attempt], *, gone_at: dict[int, float], now: float
) -> list[tuple[Attempt, Attempt]]:
    """Return pairs of attempts of one run, under different leases, that ran at the same time."""
    by_run: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_run[attempt.run].append(attempt)
    pairs = []
    for run_attempts in by_run.values():
        # Sorted by start: each attempt is checked against every later one it was still
        # running for. A run has a handful of attempts, so the pairs stay few.
        for index, first in enumerate(run_attempts):
            first_until = first.until(gone_at, now)
            for second in run_attempts[index + 1 :]:
                if second.started >= first_until:
                    continue
                if second.token != first.token:
                    pairs.append((first, second))
    return pairs
