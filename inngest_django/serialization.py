"""JSON in and out for step outputs, run outputs and errors; never pickle."""

from __future__ import annotations

import json
import traceback
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from pydantic import BaseModel, TypeAdapter

from .conf import app_settings
from .exceptions import LimitExceededError, NonRetriableError


class OutputNotSerializableError(TypeError):
    """A value cannot be stored as JSON."""


def dump_value(value: Any, output_type: Any = None) -> tuple[Any, int]:
    """Return `value` as stored JSON (after a round trip) and its encoded size in bytes."""
    try:
        if output_type is not None:
            value = TypeAdapter(output_type).dump_python(value, mode="json")
        elif isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        text = json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    # RecursionError: a value nested deeper than the interpreter's recursion limit.
    except (TypeError, ValueError, RecursionError) as exc:
        raise OutputNotSerializableError(
            f"output of type {type(value).__name__} is not JSON-serializable ({exc}); "
            "return JSON data, or a pydantic model with output_type="
        ) from exc
    try:
        stored = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        raise OutputNotSerializableError(f"output is not storable as JSON: {exc}") from None
    # Escapes only: NUL is written \u0000 and every surrogate \udXXX, so most text skips the walk.
    if ("\\u0000" in text or "\\ud" in text) and (problem := storable_problem(stored)):
        raise OutputNotSerializableError(f"output {problem}")
    return stored, len(text.encode())


def storable_problem(value: Any, *, max_depth: int | None = None) -> str:
    """Return why a JSON value cannot be stored alike on SQLite and PostgreSQL, or ""."""
    # Iterative, so a deep value cannot overflow the stack here.
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        current, depth = pending.pop()
        if max_depth is not None and depth > max_depth:
            return f"is nested deeper than {max_depth} levels"
        if isinstance(current, dict):
            pending.extend((key, depth + 1) for key in current)
            pending.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            pending.extend((item, depth + 1) for item in current)
        elif isinstance(current, str):
            # PostgreSQL refuses NUL in text and jsonb, and no UTF-8 column holds a lone surrogate.
            if "\x00" in current:
                return "contains a NUL character (\\u0000), which PostgreSQL cannot store"
            try:
                current.encode()
            except UnicodeEncodeError:
                return "contains a lone surrogate, which is not valid Unicode"
    return ""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {1: "a", "1": "b"} encodes as two "1" keys; decoding would silently keep only the last.
    found = dict(pairs)
    if len(found) != len(pairs):
        keys = sorted({key for key, _ in pairs if sum(k == key for k, _ in pairs) > 1})
        raise ValueError(f"two keys of an object both become {keys[0]!r} in JSON")
    return found


def dump_step_output(step_key: str, result: Any, output_type: Any = None) -> Any:
    """Return a step's result as stored JSON; not JSON, or over MAX_STEP_OUTPUT_BYTES, fails."""
    return _dump_output(f"step {step_key!r}", f"step {step_key!r} output", result, output_type)


def dump_run_output(result: Any, output_type: Any = None) -> Any:
    """Return a run's result as stored JSON; not JSON, or over MAX_STEP_OUTPUT_BYTES, fails."""
    # A run's output is a step's output as far as storage goes: Inngest caps both at 4 MiB.
    return _dump_output("run output", "run output", result, output_type)


def _dump_output(owner: str, what: str, result: Any, output_type: Any) -> Any:
    try:
        stored, size = dump_value(result, output_type)
    except OutputNotSerializableError as exc:
        raise NonRetriableError(f"{owner}: {exc}") from exc
    limit = app_settings.MAX_STEP_OUTPUT_BYTES
    if size > limit:
        raise LimitExceededError(
            f"{what} is {size} bytes, over the limit of {limit} bytes (MAX_STEP_OUTPUT_BYTES)",
            limit="MAX_STEP_OUTPUT_BYTES",
        )
    return stored


def load_value(stored: Any, output_type: Any = None) -> Any:
    """Return a stored JSON value, validated into `output_type` when one is given."""
    if output_type is None:
        return stored
    return TypeAdapter(output_type).validate_python(stored)


def error_to_json(exc: BaseException) -> dict[str, Any]:
    """Return the stored shape of an error: name, message and stack."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    name = getattr(exc, "name", None) if type(exc).__name__ == "StepError" else None
    try:
        message = str(exc)
    except Exception:
        message = f"<{type(exc).__name__}: str() failed>"
    return {
        "name": _storable_text(str(name or type(exc).__name__)),
        "message": _storable_text(message),
        "stack": _storable_text(stack),
    }


def _storable_text(text: str) -> str:
    """Return `text` with NUL and lone surrogates escaped, so every database stores it."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode()
    return text
