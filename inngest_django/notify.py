"""Wake idle workers with PostgreSQL LISTEN/NOTIFY, and back off while the database is away."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from .conf import app_settings

logger = logging.getLogger(__name__)

# Migration 0007's triggers notify this channel after commits that leave work due now.
CHANNEL = "inngest_django"
# How often a listener waiting for notifications looks whether it should stop.
STOP_CHECK_SECONDS = 0.5


class Backoff:
    """Exponential, jittered delays between attempts to reach the database; logs each outage once.

    Args:
        what: Who is reconnecting, for the log lines ("Worker loop", "Listener").
        first_seconds: The first delay.
        max_seconds: The longest delay.
        log: The logger of the module that reconnects.
    """

    def __init__(
        self,
        what: str,
        *,
        first_seconds: float = 0.1,
        max_seconds: float = 5.0,
        log: logging.Logger = logger,
    ) -> None:
        self.what = what
        self.log = log
        self.first_seconds = first_seconds
        self.max_seconds = max_seconds
        self.failures = 0

    @property
    def failing(self) -> bool:
        """Return True between a failure and the next success."""
        return self.failures > 0

    def failed(self, exc: BaseException) -> float:
        """Count a failed attempt and return how long to wait before the next one."""
        self.failures += 1
        # psycopg's messages run over several lines; a log line should not.
        message = " ".join(str(exc).split())
        if self.failures == 1:
            self.log.warning(
                "%s lost the database; retrying with backoff: %s: %s",
                self.what,
                type(exc).__name__,
                message,
                extra={"action": "database_unavailable"},
            )
        else:
            self.log.debug(
                "%s still cannot reach the database attempt=%d: %s",
                self.what,
                self.failures,
                message,
                extra={"action": "database_unavailable"},
            )
        delay = min(self.max_seconds, self.first_seconds * 2 ** min(self.failures - 1, 30))
        # Jitter: the workers of a fleet lose the database together and should not all
        # knock on its door in the same millisecond when it comes back.
        return delay * random.uniform(0.5, 1.0)

    def recovered(self) -> None:
        """Log the end of an outage, if there was one, and start the delays afresh."""
        if not self.failures:
            return
        self.log.info(
            "%s reached the database again after %d failed attempt(s)",
            self.what,
            self.failures,
            extra={"action": "database_recovered"},
        )
        self.failures = 0


def listen_enabled(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Return True if workers on this database should LISTEN instead of only polling."""
    if connections[alias].vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3 and app_settings.LISTEN_NOTIFY


def connection_params(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """Return psycopg connect() arguments for the database Django uses under `alias`."""
    params = connections[alias].get_connection_params()
    # A listener only reads from its socket, so only keepalives notice a silently dead peer.
    for key, value in (
        ("keepalives", 1),
        ("keepalives_idle", 30),
        ("keepalives_interval", 10),
        ("keepalives_count", 3),
    ):
        params.setdefault(key, value)
    return params


class Listener:
    """A thread with its own connection that LISTENs and sets `wake` on every notification.

    Django's connections belong to one thread each and close between worker rounds, so the
    listener keeps a psycopg connection of its own, in autocommit mode.

    Args:
        wake: The event the worker's idle wait blocks on.
        alias: The database to listen on.
    """

    def __init__(self, wake: threading.Event, *, alias: str = DEFAULT_DB_ALIAS) -> None:
        self.wake = wake
        self._params = connection_params(alias)
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._backoff = Backoff("Listener")
        self._thread = threading.Thread(target=self._run, name="inngest-listen", daemon=True)
        self._heard: set[str] = set()
        self._heard_lock = threading.Lock()

    @property
    def listening(self) -> bool:
        """Return True while a LISTEN is in place, so notifications reach `wake`."""
        return self._listening.is_set()

    def take_heard(self) -> set[str]:
        """Return the tables notified about since the last call (each payload is one)."""
        with self._heard_lock:
            heard, self._heard = self._heard, set()
        return heard

    def start(self) -> None:
        """Start listening in the background."""
        self._thread.start()

    def stop(self, timeout: float = 2 * STOP_CHECK_SECONDS) -> None:
        """Stop the thread and close its connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._backoff.recovered()
                    logger.info(
                        "Listening for wake-ups channel=%s",
                        CHANNEL,
                        extra={"action": "listening"},
                    )
                    # Whatever was committed while nobody listened was not heard: look now.
                    self.wake.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            with self._heard_lock:
                                self._heard.add(note.payload)
                            self.wake.set()
            except Exception as exc:
                # Any failure, not only psycopg's: a dead listener would leave the worker
                # polling for good without a word.
                self._listening.clear()
                self._stop.wait(self._backoff.failed(exc))
            finally:
                self._listening.clear()
