"""Debian's headless Chromium driven by Playwright (no browser download: the system
``chromium`` package)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def chromium_page(chromium, idp):
    """A fresh browser profile. The sandbox TLS CA is not in Chromium's store, so
    certificate errors are ignored for this profile only (the TLS itself is real)."""
    context = chromium.new_context(ignore_https_errors=True, locale="fr-FR")
    page = context.new_page()
    yield page
    context.close()
