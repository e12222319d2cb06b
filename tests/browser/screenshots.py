"""Screenshots for the docs: browser tests save them when INNGEST_DJANGO_SCREENSHOTS is set."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def save_screenshot(page: Page, name: str) -> bytes:
    """Return a PNG of the page; with INNGEST_DJANGO_SCREENSHOTS=1, also save it in docs/images.

    Off by default, so a test run leaves the checkout as it was.
    """
    png = page.screenshot(full_page=True)
    if os.environ.get("INNGEST_DJANGO_SCREENSHOTS"):
        DOCS_IMAGES.mkdir(exist_ok=True)
        (DOCS_IMAGES / f"{name}.png").write_bytes(png)
    return png
