"""A logging filter that hides Event API keys in the request paths Django logs."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"


class RedactEventKeys(logging.Filter):
    """Replace the key in `/e/<key>` with "[redacted]" in a record's message and arguments.

    Add it to the handlers (or the `django.server` and `django.request` loggers) that write
    request paths; it never drops a record. `path_prefix` is where the Event API is mounted.
    """

    def __init__(self, name: str = "", path_prefix: str = "/e/") -> None:
        super().__init__(name)
        self.pattern = re.compile(rf"({re.escape(path_prefix)})[^/\s?#\"']+")

    def redact(self, value: Any) -> Any:
        """Return `value` with keys redacted if it is a string, else unchanged."""
        if isinstance(value, str) and "/" in value:
            return self.pattern.sub(rf"\g<1>{REDACTED}", value)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: self.redact(arg) for key, arg in record.args.items()}
        return True
