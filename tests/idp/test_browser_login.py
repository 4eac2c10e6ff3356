"""Browser login (authorization code + PKCE) of the local identity provider, as Keycloak 26 does it.

The tests act as a browser with `requests` (no automatic redirects, a cookie jar) and as a web
front end: by hand, and with Authlib's OAuth2Session as a real OIDC client library would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests

CLIENT = "buendnis-web"
REDIRECT = "http://127.0.0.1:8090/auth/callback"
PASSWORD = "demo"
USER = "cw.jmd-leverkusen"
USER_ID = "5b47324b-9b61-5fe1-9cb2-5039497adf31"


# --- a small browser --------------------------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.labels: dict[str, str] = {}
        self.inputs: list[dict[str, str]] = []
        self.html_lang: str | None = None
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_lang = a.get("lang")
        elif tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"), "fields": {}})
        elif tag == "input":
            self.inputs.append(a)
            if self.forms and a.get("name"):
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "label":
            self._label = a.get("for")

    def handle_data(self, data: str) -> None:
        if self._label:
            self.labels[self._label] = self.labels.get(self._label, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None


def parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class Browser:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.http = requests.Session()

    def get(self, url: str, **params: Any) -> requests.Response:
        return self.http.get(url, params=params or None, allow_redirects=False, timeout=10)

    def authorize(self, **overrides: Any) -> requests.Response:
        params = {
            "response_type": "code",
            "client_id": CLIENT,
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": "st-" + secrets.token_urlsafe(8),
            "nonce": "n-" + secrets.token_urlsafe(8),
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not None}
        return self.get(f"{self.issuer}/protocol/openid-connect/auth", **params)

    def submit(self, page: requests.Response, username: str, password: str) -> requests.Response:
        forms = parse(page.text).forms
        assert len(forms) == 1 and forms[0]["method"] == "post"
        fields = {**forms[0]["fields"], "username": username, "password": password}
        return self.http.post(forms[0]["action"], data=fields, allow_redirects=False, timeout=10)

    def cookie(self, name: str) -> Any:
        return next((c for c in self.http.cookies if c.name == name), None)


def redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text[:500]
    location = response.headers["Location"]
    assert location.startswith(("http://127.0.0.1:8090", "http://localhost:8090"))
    return dict(parse_qsl(urlsplit(location).query))


@pytest.fixture()
def browser(idp) -> Browser:
    return Browser(idp.issuer)


def token_request(idp, **data: str) -> requests.Response:
    return requests.post(
        f"{idp.issuer}/protocol/openid-connect/token",
        data={"client_id": CLIENT, **data},
        timeout=10,
    )


def login(browser: Browser, username: str = USER, **overrides: Any):
    """Sign in through the form; returns (redirect params, verifier, request params)."""
    verifier, challenge = pkce()
    page = browser.authorize(code_challenge=challenge, **overrides)
    assert page.status_code == 200, page.text[:500]
    params = redirect_params(browser.submit(page, username, PASSWORD))
    return params, verifier


def exchange(idp, code: str, verifier: str, redirect_uri: str = REDIRECT) -> requests.Response:
    return token_request(
        idp,
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
    )


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- discovery --------------------------------------------------------------------------------


def test_discovery_lists_the_browser_endpoints(idp):
    config = requests.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=5).json()
    base = f"{idp.issuer}/protocol/openid-connect"
    assert config["authorization_endpoint"] == f"{base}/auth"
    assert config["end_session_endpoint"] == f"{base}/logout"
    assert "authorization_code" in config["grant_types_supported"]
    assert config["response_types_supported"] == ["code"]
    assert "S256" in config["code_challenge_methods_supported"]
    # The endpoints answer: /auth with an error page for a missing client, logout with a page.
    assert requests.get(config["authorization_endpoint"], timeout=5).status_code == 400
    assert requests.get(config["end_session_endpoint"], timeout=5).status_code == 200


# --- login form -------------------------------------------------------------------------------


def test_login_page_is_an_accessible_self_contained_form(browser):
    page = browser.authorize(code_challenge=pkce()[1], ui_locales="de")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "no-store" in page.headers["Cache-Control"]
    doc = parse(page.text)
    assert doc.html_lang == "de"
    assert doc.labels == {"username": "Benutzername oder E-Mail", "password": "Passwort"}
    assert {i.get("id") for i in doc.inputs} >= {"username", "password"}
    assert 'id="dev-banner"' in page.text and "Entwicklungs-Identitätsanbieter" in page.text
    assert "Development identity provider" in page.text
    # No external assets: no scripts, stylesheets or images from anywhere.
    assert not re.search(r"<(script|img|link)\b", page.text)
    (form,) = doc.forms
    action = urlsplit(form["action"])
    assert action.path == "/realms/buendnis/login-actions/authenticate"
    query = parse_qs(action.query)
    assert set(query) == {"session_code", "execution", "client_id", "tab_id"}
    assert query["client_id"] == [CLIENT]
    auth_cookie = browser.cookie("AUTH_SESSION_ID")
    assert auth_cookie is not None and auth_cookie.path == "/realms/buendnis/"
    assert auth_cookie.has_nonstandard_attr("HttpOnly")
    english = browser.authorize(code_challenge=pkce()[1], ui_locales="en")
    assert parse(english.text).html_lang == "en"
    assert parse(english.text).labels["password"] == "Password"


def test_browser_login_issues_tokens_with_organisation_roles_state_and_nonce(browser, idp):
    verifier, challenge = pkce()
    page = browser.authorize(code_challenge=challenge, state="xyz-state", nonce="n-0S6")
    response = browser.submit(page, USER, PASSWORD)
    location = response.headers["Location"]
    # Keycloak's order: state, session_state, iss, code.
    assert [k for k, _ in parse_qsl(urlsplit(location).query)] == [
        "state",
        "session_state",
        "iss",
        "code",
    ]
    params = redirect_params(response)
    assert location.startswith(REDIRECT + "?")
    assert params["state"] == "xyz-state"
    assert params["iss"] == idp.issuer

    answer = exchange(idp, params["code"], verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert {"access_token", "id_token", "refresh_token", "expires_in", "session_state"} <= set(
        tokens
    )
    assert tokens["session_state"] == params["session_state"]
    assert answer.headers["Cache-Control"] == "no-store"

    access = claims(tokens["access_token"])
    assert access["sub"] == USER_ID
    assert access["azp"] == CLIENT
    assert access["aud"] == "buendnis-api"
    assert list(access["organization"]) == ["jmd-leverkusen"]
    assert "case_worker" in access["realm_access"]["roles"]
    assert access["sid"] == params["session_state"]
    assert access["acr"] == "1"

    ident = jwt.decode(
        tokens["id_token"],
        idp.private_key.public_key(),
        algorithms=["RS256"],
        audience=CLIENT,
        issuer=idp.issuer,
    )
    assert ident["nonce"] == "n-0S6"
    assert ident["aud"] == CLIENT and ident["azp"] == CLIENT
    assert ident["sid"] == params["session_state"]
    assert ident["typ"] == "ID"
    assert ident["at_hash"]


def test_access_token_has_the_shape_of_a_password_grant_token(browser, idp, keycloak):
    params, verifier = login(browser)
    browser_token = claims(exchange(idp, params["code"], verifier).json()["access_token"])
    password_token = claims(keycloak().token(USER, PASSWORD)["access_token"])
    varying = {"exp", "iat", "jti", "sid", "azp", "auth_time", "allowed-origins"}
    assert set(browser_token) - {"allowed-origins"} == set(password_token) - {"allowed-origins"}
    for name in set(password_token) - varying:
        assert browser_token[name] == password_token[name], name
    assert browser_token["allowed-origins"] == ["http://127.0.0.1:8090", "http://localhost:8090"]


def test_login_by_email_works(browser, idp):
    params, verifier = login(browser, username="CW.JMD-Leverkusen@buendnis.example")
    access = claims(exchange(idp, params["code"], verifier).json()["access_token"])
    assert access["preferred_username"] == USER


@pytest.mark.parametrize(
    ("username", "password"),
    [(USER, "wrong"), ("nobody", PASSWORD), ("service-account-intake-service", ""), ("", "")],
)
def test_wrong_credentials_show_the_form_again_without_a_hint(browser, idp, username, password):
    page = browser.authorize(code_challenge=pkce()[1], ui_locales="en")
    again = browser.submit(page, username, password)
    assert again.status_code == 200
    assert "Location" not in again.headers
    assert "Invalid username or password." in again.text
    # The only message is the generic one: nothing says whether user or password was wrong.
    assert re.findall(r'role="alert"[^>]*>([^<]*)<', again.text) == [
        "Invalid username or password."
    ]
    assert browser.cookie("KEYCLOAK_IDENTITY") is None
    # The form was re-issued with a fresh single-use action: the old one is refused.
    assert parse(again.text).forms[0]["action"] != parse(page.text).forms[0]["action"]
    stale = browser.submit(page, USER, PASSWORD)
    assert stale.status_code == 200 and "Location" not in stale.headers
    assert "Page has expired" in stale.text


def test_after_a_wrong_password_the_right_one_signs_in(browser, idp):
    verifier, challenge = pkce()
    page = browser.authorize(code_challenge=challenge, state="s1")
    again = browser.submit(page, USER, "nope")
    assert 'value="cw.jmd-leverkusen"' in again.text  # the username is kept, as in Keycloak
    params = redirect_params(browser.submit(again, USER, PASSWORD))
    assert params["state"] == "s1"
    assert exchange(idp, params["code"], verifier).status_code == 200


def test_form_post_needs_the_browser_that_opened_it(browser, idp):
    page = browser.authorize(code_challenge=pkce()[1])
    action = parse(page.text).forms[0]["action"]
    # Another browser (no AUTH_SESSION_ID cookie) cannot use the form's action URL.
    other = requests.post(
        action, data={"username": USER, "password": PASSWORD}, allow_redirects=False, timeout=5
    )
    assert other.status_code == 400 and "Location" not in other.headers
    # A forged session_code fails too, even from the right browser.
    forged = re.sub(r"session_code=[^&]+", "session_code=forged", action)
    response = browser.http.post(
        forged, data={"username": USER, "password": PASSWORD}, allow_redirects=False, timeout=5
    )
    assert response.status_code == 200 and "Location" not in response.headers
    assert browser.cookie("KEYCLOAK_IDENTITY") is None


# --- redirect URIs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example/callback",
        "http://127.0.0.1:8090.evil.example/callback",
        "http://127.0.0.1:8090@evil.example/callback",
        "http://127.0.0.1:8091/callback",
        "https://127.0.0.1:8090/callback",
        "http://evil.example/?next=http://127.0.0.1:8090/",
        "http:%2F%2Fevil.example%2F",
        "//evil.example/",
        "http://127.0.0.1:8090\\@evil.example/",
        None,
        # Encoded delimiters, user info, backslashes, dot segments, other ports: the string as
        # sent is compared, and whatever a browser could read as another place is refused.
        "http://127.0.0.1:8090%2F@evil.example/cb",
        "http://127.0.0.1:8090%2f@evil.example/cb",
        "http://127.0.0.1:8090%252F@evil.example/cb",
        "http://127.0.0.1:8090%40evil.example/cb",
        "http://attacker@127.0.0.1:8090/cb",
        "http://127.0.0.1:8090\\evil.example/cb",
        "http://127.0.0.1:8090/\\evil.example/cb",
        "http://127.0.0.1:8090/%5Cevil.example/cb",
        "http://127.0.0.1:8090/%2F%2Fevil.example/cb",
        "http://127.0.0.1:8090/a/../callback",
        "http://127.0.0.1:8090/..%2F..%2Fcb",
        "http://127.0.0.1:8090/%2e%2e/cb",
        "http://127.0.0.1:8090/%252e%252e/cb",
        "http://127.0.0.1:80/cb",
        "http://127.0.0.1/cb",
        "http://localhost:8091/cb",
        "http://127.0.0.1:8090 @evil.example/cb",
        "http://127.0.0.1:8090/cb\r\nLocation: http://evil.example/",
    ],
)
def test_a_wrong_redirect_uri_shows_an_error_page_and_never_redirects(browser, redirect_uri):
    response = browser.authorize(code_challenge=pkce()[1], redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Invalid parameter: redirect_uri" in response.text
    assert browser.cookie("AUTH_SESSION_ID") is None


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8090",
        "http://127.0.0.1:8090/",
        "http://localhost:8090/deep/path?keep=1",
        "http://127.0.0.1:8090/callback?next=%2F..%2Fx",
        "http://127.0.0.1:8090/caf%C3%A9",
    ],
)
def test_redirect_uris_matching_the_wildcard_are_accepted(browser, idp, redirect_uri):
    params, verifier = login(browser, redirect_uri=redirect_uri, state="w")
    assert params["state"] == "w"
    if "keep=1" in redirect_uri:
        assert params["keep"] == "1"
    assert exchange(idp, params["code"], verifier, redirect_uri).status_code == 200


def test_unknown_or_missing_client_shows_an_error_page(browser):
    response = browser.authorize(client_id="no-such-client")
    assert response.status_code == 400 and "Client not found." in response.text
    assert "Location" not in response.headers
    response = browser.authorize(client_id=None)
    assert response.status_code == 400 and "Missing parameter: client_id" in response.text


# --- errors sent back to the client -----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"response_type": "token"}, "unauthorized_client", None),
        ({"response_type": "bogus"}, "unsupported_response_type", None),
        ({"response_type": None}, "invalid_request", "Missing parameter: response_type"),
        ({"code_challenge": None}, "invalid_request", "Missing parameter: code_challenge"),
        (
            {"code_challenge_method": None},
            "invalid_request",
            "Missing parameter: code_challenge_method",
        ),
        (
            {"code_challenge_method": "plain"},
            "invalid_request",
            "Invalid parameter: code challenge method is not configured one",
        ),
        ({"code_challenge": "short"}, "invalid_request", "Invalid parameter: code_challenge"),
        (
            {"scope": "openid unknown-scope"},
            "invalid_scope",
            "Invalid scopes: openid unknown-scope",
        ),
        ({"prompt": "none"}, "login_required", None),
    ],
)
def test_request_errors_are_redirected_with_state(browser, idp, overrides, error, description):
    params = {"code_challenge": pkce()[1], "state": "err-state", **overrides}
    response = browser.authorize(**params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    got = dict(parse_qsl(urlsplit(location).fragment or urlsplit(location).query))
    assert got["error"] == error
    assert got.get("error_description") == description or (
        description is None and error == "unauthorized_client"
    )
    assert got["state"] == "err-state"
    assert got["iss"] == idp.issuer
    assert "code" not in got


def test_client_without_standard_flow_cannot_start_a_browser_login(browser):
    response = browser.authorize(client_id="buendnis-cli", redirect_uri=None, scope="profile")
    # buendnis-cli has no redirect URIs: nothing to send an error to, so an error page.
    assert response.status_code == 400 and "Location" not in response.headers


# --- token endpoint ---------------------------------------------------------------------------


def test_pkce_verifier_mismatch_is_refused_and_burns_the_code(browser, idp):
    params, verifier = login(browser)
    wrong = exchange(idp, params["code"], pkce()[0])
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed",
    }
    again = exchange(idp, params["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_missing_verifier_is_refused(browser, idp):
    params, _ = login(browser)
    response = token_request(
        idp, grant_type="authorization_code", code=params["code"], redirect_uri=REDIRECT
    )
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE code verifier not specified",
    }


def test_a_code_used_twice_is_refused_and_revokes_its_tokens(browser, idp):
    params, verifier = login(browser)
    first = exchange(idp, params["code"], verifier)
    assert first.status_code == 200
    tokens = first.json()
    second = exchange(idp, params["code"], verifier)
    assert second.status_code == 400
    assert second.json() == {"error": "invalid_grant", "error_description": "Code not valid"}
    refresh = token_request(idp, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    userinfo = requests.get(
        f"{idp.issuer}/protocol/openid-connect/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert userinfo.status_code == 401


def test_redirect_uri_must_equal_the_one_of_the_auth_request(browser, idp):
    params, verifier = login(browser)
    response = exchange(idp, params["code"], verifier, "http://127.0.0.1:8090/other")
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Incorrect redirect_uri",
    }


def test_code_expires_after_sixty_seconds(browser, idp):
    params, verifier = login(browser)
    start = idp.clock()
    idp.clock = lambda: start + 61
    response = exchange(idp, params["code"], verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_code_of_another_client_or_garbage_is_refused(browser, idp):
    response = token_request(
        idp, grant_type="authorization_code", code="garbage", code_verifier=pkce()[0]
    )
    assert response.json() == {"error": "invalid_grant", "error_description": "Code not valid"}
    params, verifier = login(browser)
    other = requests.post(
        f"{idp.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "buendnis-cli",
            "code": params["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        timeout=5,
    )
    assert other.json()["error"] == "unauthorized_client"


def test_refresh_works_for_browser_tokens(browser, idp):
    params, verifier = login(browser)
    tokens = exchange(idp, params["code"], verifier).json()
    refreshed = token_request(
        idp, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text
    assert list(claims(refreshed.json()["access_token"])["organization"]) == ["jmd-leverkusen"]


# --- single sign-on ---------------------------------------------------------------------------


def test_sso_cookie_skips_the_form(browser, idp):
    first, _ = login(browser)
    identity = browser.cookie("KEYCLOAK_IDENTITY")
    assert identity is not None and identity.path == "/realms/buendnis/"
    assert identity.has_nonstandard_attr("HttpOnly")
    assert browser.cookie("KEYCLOAK_SESSION") is not None
    verifier, challenge = pkce()
    response = browser.authorize(code_challenge=challenge, state="again", nonce="n2")
    params = redirect_params(response)
    assert params["state"] == "again"
    assert params["session_state"] == first["session_state"]
    tokens = exchange(idp, params["code"], verifier).json()
    assert claims(tokens["id_token"])["nonce"] == "n2"
    assert claims(tokens["access_token"])["acr"] == "0"  # SSO, as Keycloak marks it


def test_sso_cookie_is_samesite_lax(browser, idp):
    verifier, challenge = pkce()
    page = browser.authorize(code_challenge=challenge)
    response = browser.submit(page, USER, PASSWORD)
    set_cookies = response.raw.headers.getlist("Set-Cookie")
    identity = next(c for c in set_cookies if c.startswith("KEYCLOAK_IDENTITY="))
    assert "HttpOnly" in identity and "SameSite=Lax" in identity
    assert "Path=/realms/buendnis/" in identity


def test_prompt_login_shows_the_form_despite_sso(browser):
    login(browser)
    response = browser.authorize(code_challenge=pkce()[1], prompt="login")
    assert response.status_code == 200 and parse(response.text).forms


def test_prompt_none_with_sso_redirects_with_a_code(browser):
    login(browser)
    params = redirect_params(browser.authorize(code_challenge=pkce()[1], prompt="none"))
    assert "code" in params


def test_another_browser_has_no_sso(browser, idp):
    login(browser)
    stranger = Browser(idp.issuer)
    response = stranger.authorize(code_challenge=pkce()[1])
    assert response.status_code == 200 and parse(response.text).forms


# --- logout -----------------------------------------------------------------------------------


def test_logout_with_id_token_hint_ends_the_session_and_redirects(browser, idp):
    params, verifier = login(browser)
    tokens = exchange(idp, params["code"], verifier).json()
    response = browser.get(
        f"{idp.issuer}/protocol/openid-connect/logout",
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri="http://127.0.0.1:8090/bye",
        state="out-1",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "http://127.0.0.1:8090/bye?state=out-1"
    assert browser.cookie("KEYCLOAK_IDENTITY") is None
    page = browser.authorize(code_challenge=pkce()[1])
    assert page.status_code == 200 and parse(page.text).forms  # the form again
    refresh = token_request(idp, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.json() == {"error": "invalid_grant", "error_description": "Session not active"}


def test_logout_ends_the_session_even_if_the_cookie_is_kept(browser, idp):
    params, verifier = login(browser)
    tokens = exchange(idp, params["code"], verifier).json()
    kept = browser.http.cookies.copy()
    browser.get(f"{idp.issuer}/protocol/openid-connect/logout", id_token_hint=tokens["id_token"])
    browser.http.cookies = kept
    page = browser.authorize(code_challenge=pkce()[1])
    assert page.status_code == 200 and parse(page.text).forms


def test_logout_refuses_an_unregistered_post_logout_redirect_uri(browser, idp):
    params, verifier = login(browser)
    tokens = exchange(idp, params["code"], verifier).json()
    response = browser.get(
        f"{idp.issuer}/protocol/openid-connect/logout",
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri="http://evil.example/",
    )
    assert response.status_code == 400 and "Location" not in response.headers
    assert "Invalid redirect uri" in response.text
    # The session is still there.
    assert redirect_params(browser.authorize(code_challenge=pkce()[1]))["code"]


def test_logout_without_a_hint_asks_for_confirmation(browser, idp):
    login(browser)
    logout = f"{idp.issuer}/protocol/openid-connect/logout"
    page = browser.get(logout, post_logout_redirect_uri="http://127.0.0.1:8090/", client_id=CLIENT)
    assert page.status_code == 200 and "Location" not in page.headers
    (form,) = parse(page.text).forms
    # Still signed in until the user confirms.
    assert redirect_params(browser.authorize(code_challenge=pkce()[1]))["code"]
    confirmed = browser.http.post(
        form["action"], data=form["fields"], allow_redirects=False, timeout=5
    )
    assert confirmed.status_code == 302
    assert confirmed.headers["Location"] == "http://127.0.0.1:8090/"
    page = browser.authorize(code_challenge=pkce()[1])
    assert page.status_code == 200 and parse(page.text).forms
    # The confirmation is single-use.
    again = browser.http.post(form["action"], data=form["fields"], allow_redirects=False, timeout=5)
    assert again.status_code == 400


def test_logout_with_a_forged_hint_is_refused(browser, idp):
    response = browser.get(
        f"{idp.issuer}/protocol/openid-connect/logout",
        id_token_hint="eyJhbGciOiJub25lIn0.e30.",
        post_logout_redirect_uri="http://127.0.0.1:8090/",
    )
    assert response.status_code == 400 and "Location" not in response.headers
    response = browser.get(
        f"{idp.issuer}/protocol/openid-connect/logout",
        post_logout_redirect_uri="http://127.0.0.1:8090/",
    )
    assert response.status_code == 400 and "Missing parameter: id_token_hint" in response.text


# --- a real OIDC client library ---------------------------------------------------------------


def test_authlib_oauth2_session_signs_in_with_pkce(idp):
    oauth2_client = pytest.importorskip("authlib.integrations.requests_client")
    config = requests.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=5).json()
    client = oauth2_client.OAuth2Session(
        client_id=CLIENT,
        scope="openid profile email",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(64)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        config["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    browser = Browser(idp.issuer)
    page = browser.http.get(url, allow_redirects=False, timeout=10)
    assert page.status_code == 200
    callback = browser.submit(page, USER, PASSWORD)
    assert callback.status_code == 302
    token = client.fetch_token(
        config["token_endpoint"],
        authorization_response=callback.headers["Location"],
        code_verifier=verifier,
    )
    jwks = jwt.PyJWKClient(config["jwks_uri"])
    id_token = jwt.decode(
        token["id_token"],
        jwks.get_signing_key_from_jwt(token["id_token"]).key,
        algorithms=config["id_token_signing_alg_values_supported"],
        audience=CLIENT,
        issuer=config["issuer"],
    )
    assert id_token["nonce"] == nonce
    assert state in callback.headers["Location"]
    userinfo = client.get(config["userinfo_endpoint"]).json()
    assert userinfo["preferred_username"] == USER
    assert list(userinfo["organization"]) == ["jmd-leverkusen"]
    refreshed = client.refresh_token(config["token_endpoint"])
    assert claims(refreshed["access_token"])["realm_access"]["roles"]
    # The end-session URL a library builds from discovery logs the user out.
    logout_url = f"{config['end_session_endpoint']}?" + urlencode(
        {
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1:8090/",
        }
    )
    out = browser.http.get(logout_url, allow_redirects=False, timeout=5)
    assert out.status_code == 302 and out.headers["Location"] == "http://127.0.0.1:8090/"


def test_logout_by_the_back_end_without_cookies_ends_the_session(browser, idp):
    params, verifier = login(browser)
    tokens = exchange(idp, params["code"], verifier).json()
    response = requests.get(
        f"{idp.issuer}/protocol/openid-connect/logout",
        params={"id_token_hint": tokens["id_token"]},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 200 and "You are logged out" in response.text
    page = browser.authorize(code_challenge=pkce()[1])
    assert page.status_code == 200 and parse(page.text).forms


# --- Keycloak's redirect-URI rules, directly ----------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "patterns", "ok"),
    [
        ("http://app.example/x", ["http://app.example/*"], True),
        ("http://app.example", ["http://app.example/*"], True),
        ("http://app.example.evil/x", ["http://app.example/*"], False),
        ("http://app.exampleevil/x", ["http://app.example/*"], False),
        ("http://user@app.example/x", ["http://user@app.example/x"], False),
        ("http://app.example/cb", ["http://app.example/cb"], True),
        ("http://app.example/cb?x=1", ["http://app.example/cb"], False),
        ("http://app.example/cb/", ["http://app.example/cb"], False),
        ("http://localhost:4711/cb", ["http://localhost/cb"], True),  # RFC 8252 loopback port
        ("http://example.org:4711/cb", ["http://example.org/cb"], False),
        ("http://app.example/%252e%252e/x", ["http://app.example/*"], False),
        ("http://app.example/%25252525252e/x", ["http://app.example/*"], False),
        ("http://app.example.evil/x", ["http://app.example*"], False),
        ("http://app.example:4711/x", ["http://app.example/*"], False),
        ("http://localhost:4711/cb", ["http://localhost:8090/cb"], False),
        ("http://app.example%2F@evil.example/cb", ["http://app.example/*"], False),
    ],
)
def test_redirect_uri_rules_follow_keycloak(uri, patterns, ok):
    from buendnis_idp.browser import verify_redirect_uri

    assert (verify_redirect_uri(uri, patterns) == uri) is ok


def test_post_logout_redirect_uris_plus_means_the_redirect_uris(idp):
    from copy import copy

    from buendnis_idp.browser import post_logout_redirect_uris

    def with_attributes(client, attributes):
        changed = copy(client)
        changed.attributes = attributes
        return changed

    web = idp.realm.client(CLIENT)
    assert post_logout_redirect_uris(web) == ["http://127.0.0.1:8090/*", "http://localhost:8090/*"]
    plus = with_attributes(web, {**web.attributes, "post.logout.redirect.uris": "+"})
    assert post_logout_redirect_uris(plus) == list(web.redirect_uris)
    assert post_logout_redirect_uris(with_attributes(web, {})) == []
