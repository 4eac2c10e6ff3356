"""An access token runs out after minutes; the page renews it with the refresh token unseen. When
the identity provider no longer accepts the refresh token (its session ended), the user signs in
again and comes back to the page they were on."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.web.sessions import edit_web_session as _edit_web_session


def test_expired_access_token_is_renewed_without_the_user_noticing(browse, platform):
    person = browse()
    page = person.sign_in("cw.jmd-leverkusen")
    old = {}

    def expire(data):
        old["access_token"] = data["token"]["access_token"]
        data["token"]["expires_at"] = 1_000_000_000  # long past

    _edit_web_session(platform, person.context, expire)
    page.goto(person.url("/teilnehmende/"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert "/realms/" not in page.url
    renewed = {}
    _edit_web_session(platform, person.context,
                      lambda data: renewed.update(token=data["token"]["access_token"]))
    assert renewed["token"] != old["access_token"]


def test_refused_refresh_token_leads_to_sign_in_and_back(browse, platform):
    person = browse()
    page = person.sign_in("cw.jmd-leverkusen")

    def end(data):
        data["token"]["expires_at"] = 1_000_000_000
        data["token"]["refresh_token"] = "no-longer-valid"

    _edit_web_session(platform, person.context, end)
    page.goto(person.url("/vermittlungen/"))
    # Still signed in at the identity provider (SSO): straight back without a password prompt.
    page.wait_for_url(person.url("/vermittlungen/"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    fresh = {}
    _edit_web_session(platform, person.context,
                      lambda data: fresh.update(refresh=data["token"]["refresh_token"]))
    assert fresh["refresh"] != "no-longer-valid"
