"""Screenshots for the docs: browser tests save what they checked into docs/images/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def save_screenshot(target: Any, name: str) -> Path:
    """Save a PNG of a Playwright page or locator as docs/images/<name>.png; return its path."""
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    path = DOCS_IMAGES / f"{name}.png"
    target.screenshot(path=str(path))
    return path
