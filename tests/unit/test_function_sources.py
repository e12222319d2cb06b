"""FunctionRegistry sources: functions registered on first look-up, and what a source implies."""

from __future__ import annotations

import pytest

import inngest_django as inngest
from inngest_django.exceptions import FunctionNotFoundError
from inngest_django.flow_control import flow_active
from inngest_django.functions import Function
from inngest_django.registry import FunctionRegistry
from inngest_django.testing import isolated_registry


class Source:
    """Builds "lazy-<name>" functions; "lazy-missing" cannot be built."""

    prefix = "lazy-"

    def __init__(self, *, limits: bool = False) -> None:
        self.limits = limits
        self.resolved: list[str] = []

    def resolve(self, function_id: str) -> Function:
        self.resolved.append(function_id)
        if function_id == "lazy-missing":
            raise FunctionNotFoundError(function_id)
        return Function(
            app_id="lazy",
            fn_id=function_id.removeprefix("lazy-"),
            handler=lambda ctx: None,
            triggers=[inngest.TriggerEvent(event="t/never")],
        )

    def limits_concurrency(self) -> bool:
        return self.limits


def test_a_source_registers_a_function_on_first_look_up_only():
    registry, source = FunctionRegistry(), Source()
    registry.add_source(source)

    assert registry.get("lazy-report").id == "lazy-report"
    assert "lazy-report" in registry and registry.get("lazy-report")
    assert source.resolved == ["lazy-report"]
    assert [function.id for function in registry] == ["lazy-report"]


def test_ids_a_source_cannot_build_or_does_not_cover_are_not_found():
    registry, source = FunctionRegistry(), Source()
    registry.add_source(source)

    assert "lazy-missing" not in registry
    assert "other-fn" not in registry and None not in registry
    with pytest.raises(FunctionNotFoundError):
        registry.get("lazy-missing")
    with pytest.raises(FunctionNotFoundError):
        registry.get("other-fn")
    assert source.resolved == ["lazy-missing", "lazy-missing"]
    assert len(registry) == 0


def test_a_registry_with_a_source_is_not_empty_for_the_worker():
    registry = FunctionRegistry()
    assert not registry
    registry.add_source(Source())
    # The worker claims runs only with functions; a source's come as runs need them.
    assert registry and len(registry) == 0


def test_a_source_whose_runs_carry_concurrency_keys_makes_claims_count_them():
    registry = FunctionRegistry()
    registry.add_source(Source(limits=False))
    assert not flow_active(registry)
    registry.add_source(Source(limits=True))
    assert flow_active(registry)


def test_isolated_registry_removes_the_sources_a_test_added():
    registry = FunctionRegistry()
    with isolated_registry(registry):
        registry.add_source(Source())
        registry.get("lazy-report")
    assert not registry and "lazy-report" not in registry
