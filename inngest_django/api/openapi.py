"""extend_schema for our views: drf-spectacular's AutoSchema, whatever DEFAULT_SCHEMA_CLASS says."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema as spectacular_extend_schema

_Target = TypeVar("_Target", bound=Callable[..., Any])


def extend_schema(**options: Any) -> Callable[[_Target], _Target]:
    """Return drf-spectacular's extend_schema(**options), based on its AutoSchema on methods too."""
    decorate = spectacular_extend_schema(**options)

    def decorator(target: _Target) -> _Target:
        # On a method, drf-spectacular subclasses the schema class already recorded in its
        # kwargs, else DRF's DEFAULT_SCHEMA_CLASS as it is at import. A project that never names
        # drf-spectacular's there gets DRF's own AutoSchema, whose get_operation() takes other
        # arguments: the schema would then be a 500. A class keeps its `schema` attribute.
        if not inspect.isclass(target):
            vars(target).setdefault("kwargs", {}).setdefault("schema", AutoSchema)
        return decorate(target)

    return decorator
