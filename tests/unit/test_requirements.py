"""The pinned requirements: runtime.txt holds the app's stack only, dev.txt the tools."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"pytest", "pytest-django", "pytest-timeout", "hypothesis", "inngest", "schemathesis"}
TOOLS |= {"playwright", "ruff", "mypy", "django-stubs", "coverage"}


def names(path: Path) -> set[str]:
    """Return the lower-case project names a requirements file pins (its -r lines aside)."""
    found = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found.add(re.split(r"[\[=<>~!; ]", line, maxsplit=1)[0].lower())
    return found


def test_runtime_requirements_hold_no_test_or_lint_tool():
    runtime = names(ROOT / "requirements" / "runtime.txt")
    assert "django" in runtime and "pydantic" in runtime
    assert not runtime & TOOLS


def test_requirements_txt_installs_both_files_and_dev_holds_the_tools():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-r requirements/runtime.txt" in lines and "-r requirements/dev.txt" in lines
    assert names(ROOT / "requirements.txt") == set()
    assert {"pytest", "playwright", "ruff"} <= names(ROOT / "requirements" / "dev.txt")


def test_every_runtime_pin_is_a_dependency_or_an_extra_of_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [
        dep for extra in project["optional-dependencies"].values() for dep in extra
    ]
    packaged = {re.split(r"[\[=<>~!; ]", dep, maxsplit=1)[0].lower() for dep in declared}
    assert names(ROOT / "requirements" / "runtime.txt") <= packaged
