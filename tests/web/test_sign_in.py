"""Signing in and out through the identity provider with the ``buendnis-web`` client."""
from __future__ import annotations

from playwright.sync_api import expect


def test_case_worker_signs_in_and_sees_the_start_page_in_german(browse):
    person = browse()
    page = person.sign_in("cw.jmd-leverkusen")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", name="Eingang")).to_be_visible()
    expect(page.get_by_role("heading", name="Nächste Termine")).to_be_visible()
    expect(page.get_by_text("cw.jmd-leverkusen · jmd-leverkusen")).to_be_visible()
    person.check_accessibility("start")


def test_sign_out_ends_the_session_here_and_at_the_identity_provider(browse, platform):
    person = browse()
    page = person.sign_in("cw.caritas-leverkusen")
    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()
    person.check_accessibility("signed-out")
    # Back to a page: the identity provider asks for the password again (no SSO left).
    page.goto(person.url("/"))
    page.wait_for_url(f"{platform.idp_url}/**")
    expect(page.locator("#username")).to_be_visible()


def test_sign_in_goes_back_to_the_page_asked_for_but_never_to_another_site(browse, platform):
    person = browse()
    page = person.page
    page.goto(person.url("/angebote/"))
    person.fill_login("cw.awo-leverkusen")
    assert page.url.startswith(person.url("/angebote/"))
    other = browse()
    other.page.goto(other.url("/anmelden?next=https://example.org/phish"))
    other.fill_login("cw.awo-leverkusen")
    assert other.page.url == other.url("/")


def test_session_cookie_is_http_only_and_changes_at_sign_in(browse):
    person = browse()
    page = person.page
    page.goto(person.url("/abgemeldet"))
    before = {c["name"]: c for c in person.context.cookies()}.get("buendnis_session")
    person.sign_in("cw.jmd-leverkusen")
    after = {c["name"]: c for c in person.context.cookies()}["buendnis_session"]
    assert after["httpOnly"] and after["sameSite"] == "Lax"
    assert before is None or before["value"] != after["value"]
