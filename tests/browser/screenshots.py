"""Screenshots for the docs: browser tests save what they checked into docs/images/."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
# Set to 1 to refresh docs/images/; otherwise the PNGs go to a temporary folder, so a test run
# leaves the checkout clean (the screenshot is still taken, and fails the test if it cannot be).
REFRESH_ENV = "INNGEST_DJANGO_SCREENSHOTS"


def save_screenshot(target: Any, name: str) -> Path:
    """Save a PNG of a Playwright page or locator as <images>/<name>.png; return its path."""
    folder = DOCS_IMAGES if os.environ.get(REFRESH_ENV) == "1" else _scratch()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    # A whole page is shot to its end; a locator is shot as it is drawn.
    whole = {"full_page": True} if hasattr(target, "goto") else {}
    target.screenshot(path=str(path), **whole)
    return path


def _scratch() -> Path:
    return Path(tempfile.gettempdir()) / "inngest_django_screenshots"
