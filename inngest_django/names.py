"""Reserved names, the one width every name, id and key column holds, and what none holds."""

from __future__ import annotations

# The key of event data under which the engine carries its own facts (a deferred run's parent,
# an invoked run's caller, a finish event's status); stripped before a handler sees the data.
ENGINE_DATA_KEY = "_inngest"
# Event names starting with this are the engine's own: only the engine sends them.
RESERVED_PREFIX = "inngest/"
# Event names and ids, function, step and defer ids, flow-control and wait keys: a CharField
# of this width holds each, so every check and every truncation uses this one number.
MAX_NAME_LENGTH = 255


def matches_nothing(value: str) -> bool:
    """Return True if no stored text can equal `value`: it holds a NUL."""
    # PostgreSQL refuses NUL in text, even as a query parameter, so a lookup of such a value
    # fails there; answered as no match before any query, it means the same on every database.
    return "\x00" in value
