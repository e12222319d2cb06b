"""ExecutionBackend: the interface between the worker's claims and another executor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime


class ExecutionBackend(ABC):
    """Executes runs the worker claimed, somewhere other than the worker's own threads."""

    #: Appended to the worker id in `locked_by` while a claimed run waits for the backend.
    name: str

    @abstractmethod
    def capacity(self, now: datetime) -> int:
        """Return how many more claimed runs to hand out now."""

    @abstractmethod
    def dispatch(self, run_ids: Sequence[str], *, lease_token: str, lease_until: datetime) -> None:
        """Hand runs leased under `lease_token` until `lease_until` to their executor."""


def load_backend(executor: str) -> ExecutionBackend | None:
    """Return the backend for an EXECUTOR setting, or None for the worker's own threads."""
    if executor == "django_q":
        from .django_q import DjangoQBackend

        return DjangoQBackend()
    return None
