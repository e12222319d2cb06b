"""Fixtures for real-browser tests: Debian's Chromium driven by Playwright's sync API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.db import connections
from playwright.sync_api import Browser, Page, Response, sync_playwright

import inngest_django

CHROMIUM = Path("/usr/bin/chromium")
# The admin's own CSS and JS, as collectstatic would gather them; tests.settings has neither
# STATIC_URL nor staticfiles, so pages would otherwise link assets the server cannot serve.
ADMIN_STATIC = Path(admin.__file__).resolve().parent / "static"
# Ours: the live-update script of the run list, run page and functions page.
PACKAGE_STATIC = Path(inngest_django.__file__).resolve().parent / "static"
# Quiet, offline Chromium: no sandbox (tests may run as root), no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Launch Chromium; a missing Chromium fails the test, it never skips."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install Debian's package with "
            "`apt-get install -y chromium` (scripts/test.sh does this). "
            "`playwright install` cannot download browsers here.",
            pytrace=False,
        )
    # Playwright's sync API leaves its event loop marked as running in this thread, so
    # Django would refuse ORM calls here as if they came from async code. Only while the
    # browser is up: every other test keeps Django's check.
    outer = {alias: connections[alias] for alias in connections}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield launched
            finally:
                launched.close()
                # Inside Playwright's context Django hands out new connections (they are kept
                # per context), so a test calling drain() here opened one. Close it, or
                # PostgreSQL refuses to drop the test database while it stays open.
                for alias in connections:
                    if connections[alias] is not outer[alias]:
                        connections[alias].close()


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a static root holding the admin's assets and ours, as collectstatic would."""
    root = tmp_path_factory.mktemp("static")
    for source in (ADMIN_STATIC, PACKAGE_STATIC):
        for child in source.iterdir():
            (root / child.name).symlink_to(child)
    return root


@pytest.fixture
def admin_static(settings: Any, static_root: Path) -> None:
    """Let the live server serve the admin's CSS and JS, so pages load as an operator's do."""
    settings.STATIC_URL = "/static/"
    settings.STATIC_ROOT = str(static_root)


@pytest.fixture
def page(browser: Browser, admin_static: None) -> Iterator[Page]:
    """Return a page in a fresh context, failing the test on error responses or script errors."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    # A broken asset or a script error is a broken admin, even if the assertions pass.
    problems: list[str] = []

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    try:
        yield page
    finally:
        context.close()
    if problems:
        pytest.fail("the browser met problems:\n" + "\n".join(problems), pytrace=False)
