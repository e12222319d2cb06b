"""Benchmarks: step throughput against the raw ORM commit rate; not part of the test suite."""

from __future__ import annotations
