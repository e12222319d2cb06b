"""PassTimes: how long a worker's passes take, to size the runs it claims ahead."""

from __future__ import annotations

import threading


class PassTimes:
    """A moving average of this worker's pass durations, to size its claims ahead."""

    # The weight of the newest pass: about the last ten passes count.
    WEIGHT = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._average: float | None = None

    def add(self, seconds: float) -> None:
        with self._lock:
            old = self._average
            self._average = seconds if old is None else old + self.WEIGHT * (seconds - old)

    def runs_within(self, seconds: float) -> int:
        """Return how many passes one thread is expected to finish in `seconds` (0 if unknown)."""
        with self._lock:
            average = self._average
        if not average or seconds <= 0:
            return 0
        return int(seconds / average)
