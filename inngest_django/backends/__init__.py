"""Execution backends: where the worker sends claimed runs when not to its own threads."""

from __future__ import annotations

from .base import ExecutionBackend, load_backend

__all__ = ["ExecutionBackend", "load_backend"]
