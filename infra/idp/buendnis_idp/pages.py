"""The few HTML pages of the browser login: self-contained (no scripts, images or external
assets), accessible, German and English, with a banner saying this is the development provider."""

from __future__ import annotations

from html import escape

LOCALES = ("de", "en")
DEFAULT_LOCALE = "en"  # Keycloak's default locale

# Keycloak's security headers for its login pages.
HEADERS = {
    "Content-Type": "text/html;charset=utf-8",
    "Cache-Control": "no-store, must-revalidate, max-age=0",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-src 'self'; frame-ancestors 'self'; object-src 'none';",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "none",
}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "banner": "Development identity provider (buendnis-idp) — not for production. "
        "Only the demo users of the realm file can sign in.",
        "title": "Sign in to your account", "username": "Username or email",
        "password": "Password", "submit": "Sign In", "invalid": "Invalid username or password.",
        "disabled": "Account is disabled, contact your administrator.",
        "not_set_up": "Account is not fully set up", "error_title": "We are sorry...",
        "expired_title": "Page has expired", "restart": "Restart login",
        "expired": "To restart the login process, follow this link:",
        "logout_title": "Logging out", "logout_question": "Do you want to log out?",
        "logout": "Logout", "logged_out": "You are logged out", "language": "Language",
    },
    "de": {
        "banner": "Entwicklungs-Identitätsanbieter (buendnis-idp) — nicht für den "
        "Produktivbetrieb. Nur die Demo-Benutzer der Realm-Datei können sich anmelden.",
        "title": "Melden Sie sich bei Ihrem Konto an", "username": "Benutzername oder E-Mail",
        "password": "Passwort", "submit": "Anmelden",
        "invalid": "Ungültiger Benutzername oder Passwort.",
        "disabled": "Konto ist deaktiviert, kontaktieren Sie den Administrator.",
        "not_set_up": "Das Konto ist nicht vollständig eingerichtet.",
        "error_title": "Es tut uns leid...", "expired_title": "Die Seite ist abgelaufen",
        "expired": "Um den Anmeldevorgang neu zu starten, folgen Sie diesem Link:",
        "restart": "Anmeldung neu starten", "logout_title": "Abmelden",
        "logout_question": "Wollen Sie sich abmelden?", "logout": "Abmelden",
        "logged_out": "Sie sind abgemeldet", "language": "Sprache",
    },
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f4f4;color:#1a1a1a;line-height:1.5}
.banner{background:#ffd23f;color:#1a1a1a;padding:.75rem 1rem;font-weight:600;
border-bottom:3px solid #1a1a1a}
main{max-width:26rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border:1px solid #ccc}
label{display:block;font-weight:600;margin-top:1rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;
font-size:1rem;border:1px solid #555}
input:focus,button:focus,a:focus{outline:3px solid #0b5cad;outline-offset:2px}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem;background:#0b5cad;color:#fff;
border:0;cursor:pointer}
.alert{border-left:4px solid #b00020;background:#fdecee;padding:.5rem .75rem;margin:1rem 0}
nav{margin-top:1.5rem;font-size:.9rem}
"""


def text(locale: str, key: str) -> str:
    return TEXT.get(locale, TEXT[DEFAULT_LOCALE])[key]


def pick_locale(ui_locales: str | None, accept_language: str | None) -> str:
    """The first of `ui_locales`, else of Accept-Language, that the pages speak."""
    for source in (ui_locales or "", accept_language or ""):
        for item in source.replace(",", " ").split():
            tag = item.split(";", 1)[0].strip().lower().split("-", 1)[0]
            if tag in LOCALES:
                return tag
    return DEFAULT_LOCALE


def _page(locale: str, title: str, body: str) -> str:
    other = "de" if locale == "en" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{locale}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{escape(title)} — buendnis-idp</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<div class="banner" role="note" id="dev-banner"><span>{escape(text(locale, "banner"))}'
        f'</span><br><span lang="{other}">{escape(text(other, "banner"))}</span></div>\n'
        f"<main>\n<h1>{escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def login_page(locale: str, action: str, username: str, error: str | None,
               locale_links: dict[str, str]) -> str:
    t = {k: escape(v) for k, v in TEXT.get(locale, TEXT[DEFAULT_LOCALE]).items()}
    alert = f'<div class="alert" role="alert" id="input-error">{escape(error)}</div>\n' \
        if error else ""
    invalid = ' aria-invalid="true" aria-describedby="input-error"' if error else ""
    current = ' aria-current="true"'
    links = " · ".join(
        f'<a href="{escape(url)}" lang="{lc}" hreflang="{lc}"{current if lc == locale else ""}>'
        f"{'Deutsch' if lc == 'de' else 'English'}</a>" for lc, url in locale_links.items())
    return _page(locale, text(locale, "title"), (
        f'{alert}<form id="kc-form-login" action="{escape(action)}" method="post">\n'
        f'<label for="username">{t["username"]}</label>\n'
        f'<input id="username" name="username" type="text" value="{escape(username)}" '
        f'autocomplete="username" autofocus required{invalid}>\n'
        f'<label for="password">{t["password"]}</label>\n'
        f'<input id="password" name="password" type="password" autocomplete="current-password" '
        f"required{invalid}>\n"
        '<input type="hidden" id="id-hidden-input" name="credentialId" value="">\n'
        f'<button type="submit" id="kc-login" name="login">{t["submit"]}</button>\n</form>\n'
        f'<nav aria-label="{t["language"]}">{links}</nav>'))


def error_page(locale: str, message: str) -> str:
    return _page(locale, text(locale, "error_title"),
                 f'<p class="alert" role="alert" id="kc-error-message">{escape(message)}</p>')


def expired_page(locale: str, restart_url: str) -> str:
    return _page(locale, text(locale, "expired_title"),
                 f"<p>{escape(text(locale, 'expired'))} <a id=\"loginRestartLink\" "
                 f'href="{escape(restart_url)}">{escape(text(locale, "restart"))}</a></p>')


def logout_confirm_page(locale: str, action: str, session_code: str) -> str:
    return _page(locale, text(locale, "logout_title"), (
        f"<p>{escape(text(locale, 'logout_question'))}</p>\n"
        f'<form id="kc-logout-form" action="{escape(action)}" method="post">\n'
        f'<input type="hidden" name="session_code" value="{escape(session_code)}">\n'
        f'<button type="submit" id="kc-logout" name="confirmLogout">'
        f"{escape(text(locale, 'logout'))}</button>\n</form>"))


def logged_out_page(locale: str) -> str:
    return _page(locale, text(locale, "logged_out"), "")
