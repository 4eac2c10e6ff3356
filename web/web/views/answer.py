"""``/termin/<token>``: the participant answers an e-mail reminder, without signing in.

The signed link is the only credential (the referrals service checks it through the gateway's
public ``/answers/<token>``); the page shows the appointment's time, mode and place and the two
answers, in the language the link names, right to left where that language is. It sets no
cookie, keeps nothing in a session and carries no CSRF token: there is no session to ride on,
and a forged form would need the secret link itself. Only POST answers, so a mail program or
scanner that opens the link answers nothing.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime

import requests
from babel.dates import format_datetime
from flask import Blueprint, abort, current_app, g, render_template, request

from ..answer_texts import RTL, TEXTS, texts_for

log = logging.getLogger("buendnis.web")

blp = Blueprint("answer", __name__)

_TOKEN = re.compile(r"^[A-Za-z0-9_\-.]{1,400}$")
RESPONSES = ("confirmed", "cancel_requested")


def _gateway(method: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    settings = current_app.config["WEB_SETTINGS"]
    headers = {"X-Request-ID": g.get("request_id", "")}
    if request.remote_addr:
        headers["X-Forwarded-For"] = request.remote_addr
    try:
        response = requests.request(method, f"{settings.gateway_url}/answers/{token}",
                                    json=body, headers=headers,
                                    timeout=settings.http_timeout_seconds)
    except requests.RequestException:
        log.warning("answer page: the gateway did not answer")
        abort(503)
    if response.status_code >= 500:
        abort(503)
    try:
        data = response.json()
    except ValueError:
        data = {}
    return response.status_code, data if isinstance(data, dict) else {}


def _when(value: str | None, language: str) -> str:
    if not value:
        return ""
    return format_datetime(datetime.fromisoformat(value), "full", tzinfo="Europe/Berlin",
                           locale=language)


def _page(token: str, status: int, data: dict, *, done: str | None = None):
    # The link's language; without a valid link, the browser's (among the seven).
    language, texts = texts_for(data.get("language") or request.accept_languages.best_match(
        list(TEXTS), default=None))
    state = data.get("state") or ("invalid" if status == 404 else "closed")
    appointment = data.get("appointment") or {}
    context = {
        "lang": language, "dir": "rtl" if language in RTL else "ltr", "t": texts,
        "state": state, "token": token, "done": done,
        "when": _when(appointment.get("start"), language),
        "mode": texts.get(appointment.get("mode") or "", ""),
        "place": ", ".join(part for part in (appointment.get("organization"),
                                             appointment.get("location")) if part),
        "answered": list(data.get("answered") or []),
    }
    page_status = {404: 404, 410: 410, 409: 409}.get(status, 200)
    response = current_app.make_response((render_template("answer/page.html", **context),
                                          page_status))
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blp.get("/termin/<token>")
def show(token: str):
    if not _TOKEN.match(token):
        return _page(token, 404, {})
    status, data = _gateway("GET", token)
    return _page(token, status, data)


@blp.post("/termin/<token>")
def answer(token: str):
    if not _TOKEN.match(token):
        return _page(token, 404, {})
    choice = request.form.get("response")
    if choice not in RESPONSES:
        abort(400)
    status, data = _gateway("POST", token, {"response": choice})
    return _page(token, status, data, done=choice if status == 200 else None)
