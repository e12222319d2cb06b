"""The model behind the INNGEST_DJANGO settings dict."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    LISTEN_NOTIFY: bool = True
    SQLITE_WAL: bool = True
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
