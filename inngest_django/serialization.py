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
    if output_type is not None:
        value = TypeAdapter(output_type).dump_python(value, mode="json")
    elif isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        text = json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise OutputNotSerializableError(
            f"output of type {type(value).__name__} is not JSON-serializable ({exc}); "
            "return JSON data, or a pydantic model with output_type="
        ) from exc
    return json.loads(text), len(text.encode())


def dump_step_output(step_key: str, result: Any, output_type: Any = None) -> Any:
    """Return a step's result as stored JSON; not JSON, or over MAX_STEP_OUTPUT_BYTES, fails."""
    try:
        stored, size = dump_value(result, output_type)
    except OutputNotSerializableError as exc:
        raise NonRetriableError(f"step {step_key!r}: {exc}") from exc
    limit = app_settings.MAX_STEP_OUTPUT_BYTES
    if size > limit:
        raise LimitExceededError(
            f"step {step_key!r} output is {size} bytes, over the limit of {limit} bytes "
            "(MAX_STEP_OUTPUT_BYTES)",
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
    return {"name": name or type(exc).__name__, "message": str(exc), "stack": stack}
