"""The package's shape: imports point down its layers, and no module grows past a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "inngest_django"
MAX_MODULE_LINES = 450

# Lowest first; docs/architecture.md draws the same map. A module may import its own layer and
# those below it. A name ending in "." covers a package and its modules.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "_interrupts",
            "clock",
            "connections",
            "cron",
            "durations",
            "enums",
            "exceptions",
            "experiment",
            "expressions",
            "ids",
            "logging",
            "names",
            "pass_times",
            "signals",
            "sqlite_write_queue",
            "schemas.defers",
            "schemas.events",
        ),
    ),
    (
        "settings and values",
        (
            "schemas.settings",
            "schemas.config",
            "conf",
            "encryption",
            "sealed_fields",
            "payload_access",
            "serialization",
            "retries",
            "notify",
        ),
    ),
    (
        "declarations",
        (
            "flow_options",
            "functions",
            "registry",
            "steps",
            "group",
            "async_steps",
            "context",
            "defer_rules",
        ),
    ),
    ("models", ("models", "models.")),
    (
        "services",
        (
            "waits",
            "event_keys",
            "flow_control",
            "handover",
            "dispatch_batch",
            "events",
            "defers",
            "outbox",
            "runs",
            "function_control",
            "scheduler",
            "retention",
            "pruner",
            "heartbeats",
            "metrics",
            "idle",
        ),
    ),
    ("engine", ("engine", "engine.", "backends", "backends.", "worker")),
    (
        "edges",
        (
            "",
            "client",
            "apps",
            "checks",
            "testing",
            "testing.",
            "admin",
            "admin.",
            "api",
            "api.",
            "prometheus",
            "prometheus.",
            "management",
            "management.",
            "schemas",
        ),
    ),
]


def module_name(path: Path) -> str:
    """Return the module's dotted name inside the package ("" for the package itself)."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    """Return the index of the layer that holds `module`."""
    best: tuple[int, int] | None = None
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            exact = member == module
            prefix = member.endswith(".") and module.startswith(member)
            if exact or prefix:
                length = len(member) + (1 if exact else 0)
                if best is None or length > best[1]:
                    best = (index, length)
    if best is None:
        raise AssertionError(f"inngest_django.{module} is in no layer: add it to LAYERS")
    return best[0]


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def runtime_imports(path: Path) -> set[str]:
    """Return the package modules `path` imports at run time (TYPE_CHECKING blocks aside)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    here = module_name(path).split(".") if module_name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                child = f"{target}.{alias.name}" if target else alias.name
                is_module = (PACKAGE / Path(*child.split("."))).with_suffix(".py").exists() or (
                    PACKAGE / Path(*child.split(".")) / "__init__.py"
                ).exists()
                found.add(child if is_module else target)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("inngest_django"):
            found.add(node.module.removeprefix("inngest_django").lstrip("."))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("inngest_django"):
                    found.add(alias.name.removeprefix("inngest_django").lstrip("."))
    found.discard(module_name(path))
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path):
    module = module_name(path)
    upward = [
        f"{target or 'inngest_django'} ({LAYERS[layer_of(target)][0]})"
        for target in sorted(runtime_imports(path))
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, f"{module} ({LAYERS[layer_of(module)][0]}) imports upward: {upward}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_a_reader_can_hold(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines"


def test_the_layer_check_sees_an_upward_import():
    # The check itself must catch what it is for: models importing the engine.
    assert layer_of("engine.finalize") > layer_of("models.runs")
    assert "engine" in runtime_imports(PACKAGE / "worker.py")
