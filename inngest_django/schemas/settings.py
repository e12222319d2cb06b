"""The model behind the INNGEST_DJANGO settings dict."""

from __future__ import annotations

import base64
import importlib.util
from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..durations import parse_duration


class AppSettingsModel(BaseModel):
    """Every INNGEST_DJANGO key with its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    EXECUTOR: Literal["worker", "django_q"] = "worker"
    DEFAULT_RETRIES: int = Field(default=4, ge=0, le=20)
    LEASE_SECONDS: float = Field(default=60.0, gt=0)
    POLL_INTERVAL_SECONDS: float = Field(default=1.0, gt=0)
    RETRY_BACKOFF_SCALE: float = Field(default=1.0, ge=0)
    FUNCTION_MODULES: tuple[str, ...] = ()
    MAX_STEPS_PER_RUN: int = Field(default=1000, ge=1, le=10000)
    MAX_STEP_OUTPUT_BYTES: int = Field(default=4 * 1024 * 1024, ge=1)
    MAX_EVENT_BYTES: int = Field(default=512 * 1024, ge=1)
    EVENT_DEDUPE_SECONDS: float = Field(default=24 * 3600, ge=0)
    DISPATCH_BATCH_SIZE: int = Field(default=100, ge=1)
    RELAY_BATCH_SIZE: int = Field(default=100, ge=1)
    MAX_DEFERS_PER_RUN: int = Field(default=20, ge=0)
    MAX_DEFER_PAYLOAD_BYTES: int = Field(default=4 * 1024 * 1024, ge=1)
    MAX_DEFER_PAYLOAD_BYTES_PER_RUN: int = Field(default=4 * 1024 * 1024, ge=1)
    CANCEL_CHECK_SECONDS: float = Field(default=0.5, ge=0)
    EVENT_API_MAX_EVENTS: int = Field(default=5000, ge=1)
    EVENT_API_MAX_REQUEST_BYTES: int = Field(default=16 * 1024 * 1024, ge=1)
    API_PERMISSION_CLASSES: tuple[str, ...] = ("rest_framework.permissions.IsAdminUser",)
    API_AUTHENTICATION_CLASSES: tuple[str, ...] = (
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    )
    # Runs a worker claims beyond its free threads, run as threads free up: one claim (and one
    # round of relay, dispatch and cron look-ups) serves several runs. 0 claims for free
    # threads only. Not used while functions with concurrency limits are registered.
    PREFETCH_RUNS: int = Field(default=3, ge=0, le=100)
    # While this worker's passes are short, it claims ahead as many more runs as it expects to
    # finish in this many seconds (by its recent pass times, at most 100 in all), so a run
    # claimed ahead waits about that long at most. 0 keeps the claim at PREFETCH_RUNS.
    PREFETCH_SECONDS: float = Field(default=0.05, ge=0, le=10)
    # A step's transaction stays open for the pass's next durable write (the finish, a sleep,
    # a wait, a retry) to commit with it; the next step commits it first. None: on. On SQLite
    # it holds the one write lock across the handler code after a step (docs/worker.md).
    CHECKPOINT: bool | None = None
    # With checkpointing on, a worker thread with claimed runs waiting commits the passes it
    # executes in turn together, for up to this many seconds (a savepoint each). 0: one commit
    # a pass. None: 0.02 on PostgreSQL; on SQLite, whose one write lock a group holds, 0.005
    # with SQLITE_WRITE_QUEUE and 0 without it (docs/worker.md).
    GROUP_COMMIT_SECONDS: float | None = Field(default=None, ge=0, le=1)
    # Runs of `async def` functions one worker holds at once on its event loop (beside its
    # threads' sync runs); their database work takes turns on one thread. 0: one at a time,
    # each in a worker thread like a sync run.
    ASYNC_RUNS: int = Field(default=100, ge=0, le=10000)
    # Threads that run one `group.parallel` round's sync step callables side by side.
    PARALLEL_STEP_THREADS: int = Field(default=10, ge=1, le=1000)
    LISTEN_NOTIFY: bool = True
    # PostgreSQL: the worker's hot statements (a finish, a memo, claims) are prepared once per
    # connection, not parsed and planned per call. False behind a PgBouncer in transaction mode
    # that does not keep prepared statements (before 1.21, or max_prepared_statements 0).
    PREPARED_STATEMENTS: bool = True
    SQLITE_WAL: bool = True
    # Writers on SQLite (this app's processes: workers, web, shell) wait for its write lock on
    # a file lock beside the database ("<NAME>-writers"), woken when it frees, instead of
    # retrying on SQLite's busy-handler schedule (docs/worker.md).
    SQLITE_WRITE_QUEUE: bool = True
    SQLITE_BUSY_TIMEOUT_SECONDS: float = Field(default=30.0, ge=0)
    # EXECUTOR="django_q": runs handed out and not yet started by a task, per worker
    # (None: twice the Q_CLUSTER workers), and q_options for async_task.
    DJANGO_Q_MAX_QUEUED: int | None = Field(default=None, ge=1)
    DJANGO_Q_OPTIONS: dict[str, Any] = Field(default_factory=dict)
    # Encryption at rest: Fernet keys (urlsafe base64, 32 bytes); the first encrypts, all
    # decrypt, so a new key goes first and old ones stay until re-encrypted. Empty: off.
    ENCRYPTION_KEYS: tuple[str, ...] = ()
    # Retention: the worker deletes finished runs (and their steps and events) older than
    # this duration ("30d"), every PRUNE_INTERVAL_SECONDS, PRUNE_BATCH_SIZE rows at a time.
    PRUNE_OLDER_THAN: str | None = None
    PRUNE_INTERVAL_SECONDS: float = Field(default=3600.0, gt=0)
    PRUNE_BATCH_SIZE: int = Field(default=500, ge=1)
    # Each worker updates its WorkerHeartbeat row this often; one missing this many beats in a
    # row is flagged stale. Rows not beaten for WORKER_HISTORY_SECONDS are deleted.
    WORKER_HEARTBEAT_SECONDS: float = Field(default=10.0, gt=0)
    WORKER_STALE_AFTER_BEATS: int = Field(default=3, ge=1)
    WORKER_HISTORY_SECONDS: float = Field(default=7 * 24 * 3600, gt=0)
    # The bearer token the Prometheus endpoint (/metrics) asks for; None: no token needed.
    METRICS_TOKEN: str | None = None

    @field_validator("PRUNE_OLDER_THAN")
    @classmethod
    def _check_prune_older_than(cls, value: str | None) -> str | None:
        """Check the retention period parses and is longer than 0; the error names the key."""
        if value is None:
            return None
        where = "INNGEST_DJANGO['PRUNE_OLDER_THAN']"
        try:
            older_than = parse_duration(value, what=where)
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
        if not older_than:
            raise ImproperlyConfigured(f"{where} must be longer than 0, got {value!r}")
        return value

    @field_validator("ENCRYPTION_KEYS", mode="before")
    @classmethod
    def _check_encryption_keys(cls, value: Any) -> Any:
        """Check each key's shape; raise ImproperlyConfigured naming its position, not the key."""
        # ImproperlyConfigured passes through pydantic unwrapped, so the message carries no
        # input_value: a key must never reach an error message or a log.
        where = "INNGEST_DJANGO['ENCRYPTION_KEYS']"
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ImproperlyConfigured(f"{where} must be a list or tuple of Fernet keys")
        for position, key in enumerate(value):
            if not _is_fernet_key(key):
                raise ImproperlyConfigured(
                    f"{where}[{position}] is not a Fernet key (32 bytes, url-safe base64); "
                    "generate one with Fernet.generate_key()"
                )
        if value and importlib.util.find_spec("cryptography") is None:
            raise ImproperlyConfigured(
                f"{where} is set but the cryptography package is not installed; "
                "pip install 'inngest-django[encryption]'"
            )
        return tuple(value)


def _is_fernet_key(key: Any) -> bool:
    """Return True if `key` decodes as Fernet decodes keys, to 32 bytes."""
    if not isinstance(key, str):
        return False
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, UnicodeError):
        return False
