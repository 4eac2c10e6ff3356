"""The web front end in a real headless Chromium (Debian's), driven by Playwright.

Pages are checked with axe-core in the page (no serious or critical violation) and written as
screenshots to ``var/screenshots`` so that people can look at them.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", REPO / "var" / "screenshots"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--lang=de-DE",
]


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package "
                    "(infra/dev/install-browser.sh)")
    return found


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def axe():
    return Axe()


class Browsing:
    """One person at one browser: signs in through the identity provider's login page."""

    def __init__(self, browser, platform, axe) -> None:
        self.platform = platform
        self.axe = axe
        self.context = browser.new_context(locale="de-DE", timezone_id="Europe/Berlin",
                                           viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(20_000)
        self.page: Page = self.context.new_page()

    def url(self, path: str) -> str:
        return self.platform.web_url + path

    def sign_in(self, username: str, password: str = "demo") -> Page:
        page = self.page
        page.goto(self.url("/"))
        self.fill_login(username, password)
        expect(page.get_by_role("navigation", name="Hauptnavigation")).to_be_visible()
        return page

    def fill_login(self, username: str, password: str = "demo") -> None:
        page = self.page
        page.wait_for_url(re.compile(re.escape(self.platform.idp_url)))
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("#kc-login")
        page.wait_for_url(re.compile(re.escape(self.platform.web_url)))

    def check_accessibility(self, name: str) -> None:
        """axe-core in the page: no serious or critical violation; and a screenshot."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        results = self.axe.run(self.page)
        grave = [
            f"{violation['id']} ({violation['impact']}): {violation['help']} — "
            + "; ".join(node["target"][0] if isinstance(node["target"][0], str)
                        else str(node["target"]) for node in violation["nodes"][:5])
            for violation in results.response["violations"]
            if violation["impact"] in ("serious", "critical")
        ]
        assert not grave, f"accessibility violations on {name}:\n" + "\n".join(grave)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def browse(browser, platform, axe):
    """``browse()`` gives a fresh browser context (own cookies) per person in a test."""
    opened: list[Browsing] = []

    def open_one() -> Browsing:
        one = Browsing(browser, platform, axe)
        opened.append(one)
        return one

    yield open_one
    for one in opened:
        one.close()
