"""Waiting in the browser for what arrives through events (the inbox, the reports)."""
from __future__ import annotations

import time

from playwright.sync_api import Page, expect


def reload_until_visible(page: Page, locator, timeout: float = 40) -> None:
    """Reloads the page until ``locator`` shows, or fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locator.count() and locator.first.is_visible():
            return
        time.sleep(1)
        page.reload()
    expect(locator.first).to_be_visible(timeout=1000)
