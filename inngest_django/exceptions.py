"""Public error hierarchy: user-facing errors, configuration errors and limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured


class InngestDjangoError(Exception):
    """Base class of every error this app raises on purpose."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class NonRetriableError(InngestDjangoError):
    """The step or function failed and retrying cannot help."""

    def __init__(self, message: str | None = None, *, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


class RetryAfterError(InngestDjangoError):
    """The step or function failed; retry no earlier than `retry_after`."""

    def __init__(
        self,
        message: str | None = None,
        retry_after: timedelta | int | datetime = 0,
        *,
        quiet: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.quiet = quiet


class StepError(InngestDjangoError):
    """A step failed for good: its retries are spent or it raised NonRetriableError."""

    def __init__(self, message: str | None = None, name: str = "Error", stack: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.stack = stack


class FunctionNotFoundError(InngestDjangoError):
    """No registered function has this id."""

    def __init__(self, function_id: str) -> None:
        super().__init__(
            f"No registered function has the id {function_id!r}. Is its module an "
            "`inngest_functions` module of an installed app, or listed in "
            "INNGEST_DJANGO['FUNCTION_MODULES']?"
        )
        self.function_id = function_id


class InvalidFunctionConfigError(ImproperlyConfigured):
    """A function's configuration is invalid."""


class InvalidEventError(InngestDjangoError, ValueError):
    """An event cannot be sent as given."""


class LimitExceededError(NonRetriableError):
    """A run went past one of the engine's limits."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class DecryptionError(InngestDjangoError):
    """A stored value is sealed and none of the configured ENCRYPTION_KEYS decrypts it."""

    def __init__(self, where: str, *, pk: Any = None, reason: str = "") -> None:
        row = f" (row {pk})" if pk is not None else ""
        super().__init__(
            f"cannot decrypt {where}{row}: "
            + (
                reason
                or "none of the configured ENCRYPTION_KEYS fits (was the key it was "
                "sealed with removed before `manage.py inngest_reencrypt` ran?), or the value "
                "is corrupt"
            )
        )
        self.where = where
        self.pk = pk
