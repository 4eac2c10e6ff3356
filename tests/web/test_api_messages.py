"""The API's English messages become the page's language (web/web/api_messages.py).

The inputs are the services' genuine messages: produced by running their marshmallow schemas,
their service functions (with stand-ins for database and runtime where a check comes first),
webargs and flask-smorest in a small service app, and the gateway's policy. When a service's
wording changes, the message no longer matches the table and these tests fail.

No platform, no browser: a bare Flask app with Flask-Babel (German by default) and, for the
English side, a stand-in catalogue built from the ids pybabel extracts from the module.
"""
from __future__ import annotations

import dataclasses
import io
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.mofile import write_mo
from flask import Flask
from flask.views import MethodView
from flask_babel import Babel, force_locale
from marshmallow import ValidationError
from web.api import ApiError
from web.api_messages import localize

from buendnis_common.auth import Principal, principal_from_claims
from buendnis_common.errors import DomainError, register_error_handlers
from web import api_messages

REPO = Path(__file__).resolve().parents[2]
MODULE = Path(api_messages.__file__)
EN_MARK = "[en] "

Found = tuple[str, str | None]  # (message, field)


# --- the app and a stand-in English catalogue ----------------------------------------------

def extracted_ids() -> list[str | tuple[str, ...]]:
    with open(MODULE, "rb") as handle:
        return [message for _line, message, _comments, _context in
                extract_from_file("python", handle.name, keywords=DEFAULT_KEYWORDS)]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Flask:
    catalogue = Catalog(locale="en")
    for message in extracted_ids():
        if isinstance(message, tuple):
            catalogue.add(message, tuple(EN_MARK + part for part in message))
        else:
            catalogue.add(message, EN_MARK + message)
    directory = tmp_path_factory.mktemp("translations")
    target = directory / "en" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with open(target / "messages.mo", "wb") as handle:
        write_mo(handle, catalogue)
    flask_app = Flask(__name__)
    flask_app.config.update(BABEL_DEFAULT_LOCALE="de",
                            BABEL_TRANSLATION_DIRECTORIES=str(directory))
    Babel(flask_app)
    return flask_app


@pytest.fixture
def page(app) -> Iterator[Flask]:
    with app.test_request_context("/"):
        yield app


# --- genuine messages ---------------------------------------------------------------------

def flatten(errors: Any, prefix: str = "") -> Iterator[Found]:
    """marshmallow's / the error body's nested errors as (message, dotted field)."""
    if isinstance(errors, dict):
        for key, inner in errors.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(errors, list):
        for index, inner in enumerate(errors):
            if isinstance(inner, str):
                yield inner, prefix or None
            else:
                yield from flatten(inner, f"{prefix}.{index}" if prefix else str(index))
    elif isinstance(errors, str):
        yield errors, prefix or None


def schema_errors(schema, data: Any) -> list[Found]:
    return list(flatten(schema.validate(data)))


def raised(call: Callable[[], Any]) -> list[Found]:
    """The message and the field errors of the DomainError ``call`` raises."""
    try:
        call()
    except DomainError as exc:
        return [(exc.message, None), *flatten(exc.errors or {})]
    raise AssertionError(f"{call} raised nothing")


def field_error(call: Callable[[], Any]) -> list[Found]:
    try:
        call()
    except ValidationError as exc:
        return list(flatten(exc.normalized_messages()))
    raise AssertionError(f"{call} raised nothing")


def person(*roles: str, org: str | None = "jmd-leverkusen",
           alliance: str | None = "leverkusen") -> Principal:
    return Principal(subject="s-1", username="cw", client_id="buendnis-web",
                     roles=frozenset(roles), org_alias=org, alliance=alliance)


def intake_messages() -> list[Found]:
    from intake.participant import schemas as p

    found: list[Found] = []
    create, update = p.ParticipantCreate(), p.ParticipantUpdate()
    found += schema_errors(create, {})  # required fields
    found += schema_errors(create, [])  # not an object
    found += schema_errors(update, {
        "given_name": "x" * 201, "family_name": None, "birth_date": "31.02.2001",
        "residence_status": "tourist", "gender": 3, "nationality": "XX",
        "languages": ["de", "zz"], "municipality": "m" * 201, "unknown_field": 1,
        "contact": {"phone": "0176 1234", "email": "not-an-address", "language": "zz",
                    "preferred_channel": "fax"},
        "education": {"years_of_schooling": 99, "highest_qualification": "phd"},
    })
    found += schema_errors(update, {"languages": "de", "contact": "x",
                                    "education": {"years_of_schooling": "many"}})
    found += schema_errors(update, {"education": {"years_of_schooling": 1e400}})  # JSON's 1e400
    found += schema_errors(update, {"languages": ["de"] * 21})
    found += schema_errors(update, {"languages": ["de", "ar", "de"]})
    found += schema_errors(update, {"contact": {"preferred_channel": "sms"}})
    found += schema_errors(update, {"contact": {"preferred_channel": "email"}})
    today = date.today()
    found += schema_errors(update, {"birth_date": (today + timedelta(days=30)).isoformat()})
    found += schema_errors(update, {"birth_date": "1900-01-01"})
    found += schema_errors(create, {
        "given_name": "A", "family_name": "B", "residence_status": "duldung",
        "birth_date": today.replace(year=today.year - 40).isoformat(),
        "needs": [{"category": "x"}] * 31, "eligibility_override_reason": "x",
    })
    found += schema_errors(p.ParticipantQuery(), {"q": "", "need_status": "x"})

    from intake.consent.schemas import ConsentCreate
    consent = ConsentCreate()
    found += schema_errors(consent, {"recipient_org": "", "data_categories": [],
                                     "valid_until": "x"})
    found += schema_errors(consent, {"recipient_org": "a", "data_categories": ["contact"] * 2,
                                     "valid_until": (today - timedelta(days=2)).isoformat()})
    found += schema_errors(consent, {"recipient_org": "a", "data_categories": ["x"],
                                     "valid_until": (today + timedelta(days=4 * 366)).isoformat()})

    from intake.consent import service as consents
    owner = SimpleNamespace(owner_org="jmd-leverkusen", alliance="leverkusen")
    for recipient in ("jmd-leverkusen", "jmd-neuss"):
        found += raised(lambda recipient=recipient: consents.grant(
            runtime=None, session=None, principal=person("case_worker"), participant=owner,
            data={"recipient_org": recipient}))

    from intake.importer import parsing
    from intake.importer import service as importer
    found += raised(lambda: parsing.read_rows("list.txt", b"x"))
    found += raised(lambda: parsing.read_rows("list.csv", b""))
    found += raised(lambda: parsing.read_rows("list.csv", b"vorname;nachname\nA;B\n"))
    found += raised(lambda: parsing.read_rows("list.xlsx", b"not a workbook"))
    # The import's limits, with the crafted files the intake tests attack with.
    from intake.importer.limits import ImportLimits
    from tests.intake.test_import_attacks import ATTACKS, sheet, workbook
    for build, _status, _message in ATTACKS.values():
        name, stream, _type = build()["file"]
        found += raised(lambda: parsing.read_rows(name, stream.getvalue()))  # noqa: B023
    tight = dataclasses.replace(ImportLimits.from_env(), max_uncompressed_bytes=100)
    found += raised(lambda: parsing.read_rows("list.xlsx", workbook(sheet("")), tight))
    rows = (b"vorname;nachname;geburtsdatum;aufenthaltsstatus;sprachen;telefon;kanal\n"
            b";B;01.01.1890;duldung;de de;0176;sms\n"
            b"A;B;2000-13-01;x;zz;;email\n")
    _count, _valid, row_errors = importer.validate("list.csv", rows)
    found += [(error["message"], error["field"]) for error in row_errors]
    return found


def referral_messages() -> list[Found]:
    from referrals import permissions
    from referrals.appointment import schemas as a
    from referrals.appointment import service as appointments
    from referrals.offer import schemas as o
    from referrals.offer import service as offers
    from referrals.referral import schemas as r
    from referrals.referral import service as referrals
    from referrals.report import schemas as reports
    from referrals.report.service import alliance_in_scope

    found: list[Found] = []
    found += schema_errors(r.ReferralCreate(), {"participant_id": "x", "to_org": "",
                                                "need_category": "x", "note": "n" * 2001})
    found += schema_errors(r.StatusUpdate(), {"status": "rejected"})
    found += schema_errors(r.StatusUpdate(), {"status": "x"})
    found += schema_errors(r.ReferralQuery(), {"box": "x", "overdue": "maybe"})
    found += schema_errors(r.MessageCreate(), {"text": ""})
    found += schema_errors(o.OfferCreate(), {"title": "T", "category": "employment",
                                             "min_age": 30, "max_age": 20})
    found += schema_errors(o.OfferCreate(), {"languages": ["deu"], "min_age": 200,
                                             "capacity": -1, "active": "maybe"})
    found += schema_errors(o.OfferQuery(), {"language": "xyz"})
    found += schema_errors(a.AppointmentCreate(), {
        "start": "2030-01-01T10:00:00", "end": "tomorrow", "mode": "x"})
    found += schema_errors(a.AppointmentCreate(), {
        "start": "2030-01-01T10:00:00+01:00", "end": "2030-01-01T09:00:00+01:00",
        "mode": "phone"})
    found += schema_errors(a.AppointmentUpdate(), {"status": "cancelled"})
    found += schema_errors(a.AppointmentQuery(), {"from": "2030-02-01T00:00:00+00:00",
                                                  "to": "2030-01-01T00:00:00+00:00"})
    found += schema_errors(a.AppointmentQuery(), {"to": "9999-12-31T23:00:00-05:00"})
    found += schema_errors(reports.ReferralReportQuery(), {"group_by": "status,shoe_size"})
    found += schema_errors(reports.ReferralReportQuery(), {"from": "2030-02-01",
                                                           "to": "2030-01-01"})
    found += field_error(lambda: reports.GroupBy().deserialize(5))

    # Who may: every action the referrals service's permission checks name.
    sources = (REPO / "services/referrals/referrals").rglob("*.py")
    actions = {match for path in sources for match in re.findall(
        r'(require_case_work|require_catalogue_editor)\(\s*\w+\s*,\s*"([^"]+)"\)',
        path.read_text(encoding="utf-8"))}
    assert len(actions) >= 5, actions
    for check, action in sorted(actions):
        found += raised(lambda check=check, action=action: getattr(permissions, check)(
            person(), action))
    found += raised(lambda: permissions.require_case_work(person("case_worker", alliance=None),
                                                          "x"))

    sender, receiver = person("case_worker"), person("case_worker", org="caritas-leverkusen")
    stranger = person("case_worker", org="awo-leverkusen")

    def status(who: Principal, current: str, wanted: str) -> list[Found]:
        referral = SimpleNamespace(status=current, from_org="jmd-leverkusen",
                                   to_org="caritas-leverkusen")
        return raised(lambda: referrals.change_status(
            runtime=None, session=None, principal=who, referral=referral, status=wanted,
            reason=None))

    found += status(sender, "requested", "completed")  # 409, with what the sender can set
    found += status(sender, "completed", "accepted")  # 409, nothing can be set
    found += status(sender, "requested", "accepted")  # 403, the receiver's
    found += status(stranger, "requested", "accepted")  # 403, nothing to add
    found += status(receiver, "requested", "rejected")  # 422, no reason

    found += raised(lambda: referrals._check_receiver(principal=sender, to_org="jmd-leverkusen"))
    found += raised(lambda: referrals._check_receiver(principal=sender, to_org="nowhere"))

    class Session:
        def __init__(self, got: Any = None, scalar: Any = None) -> None:
            self.got, self.scalar_value = got, scalar

        def get(self, _model, _key):
            return self.got

        def scalar(self, _query):
            return self.scalar_value

    def offer_check(offer: Any) -> list[Found]:
        return raised(lambda: referrals._check_offer(
            session=Session(offer), principal=sender, offer_id=uuid.uuid4(),
            to_org="caritas-leverkusen", need_category="counselling"))

    good = {"alliance": "leverkusen", "provider_org": "caritas-leverkusen",
            "category": "counselling", "active": True}
    found += offer_check(None)
    found += offer_check(SimpleNamespace(**{**good, "provider_org": "awo-leverkusen"}))
    found += offer_check(SimpleNamespace(**{**good, "category": "housing"}))
    found += offer_check(SimpleNamespace(**{**good, "active": False}))
    found += raised(lambda: referrals._check_not_open_already(
        session=Session(scalar=uuid.uuid4()), principal=sender,
        data={"participant_id": uuid.uuid4(), "to_org": "caritas-leverkusen",
              "need_category": "counselling"}))

    participant_id = uuid.uuid4()
    answer = SimpleNamespace(status_code=200, json=lambda: {
        "participant_id": str(participant_id), "pseudonym": "TN-7F3K2",
        "owner_org": sender.org_alias, "consent": None, "snapshot": {}})
    ctx = SimpleNamespace(runtime=SimpleNamespace(
        services=SimpleNamespace(get=lambda *_args, **_kwargs: answer)))
    found += raised(lambda: referrals.create(
        ctx=ctx, session=Session(), principal=sender,
        data={"participant_id": participant_id, "to_org": "caritas-leverkusen",
              "need_category": "counselling"}))

    closed = SimpleNamespace(is_closed=True, status="rejected")
    booked = SimpleNamespace(status="booked", start=datetime.now(UTC) + timedelta(days=2),
                             end=datetime.now(UTC) + timedelta(days=2, hours=1))
    found += raised(lambda: appointments.book(runtime=None, session=None, principal=sender,
                                              referral=closed, data={}))

    def change(appointment: Any, data: dict, referral: Any = closed) -> list[Found]:
        return raised(lambda: appointments.update(
            runtime=None, session=None, principal=sender, appointment=appointment,
            referral=referral, data=dict(data)))

    found += change(SimpleNamespace(status="cancelled"), {})
    found += change(booked, {"status": "cancelled", "start": booked.start})
    found += change(booked, {"status": "cancelled"})
    found += change(booked, {"status": "fulfilled"})
    found += change(booked, {"start": booked.start})
    found += raised(lambda: appointments._end_after_start(booked.end, booked.start))

    found += raised(lambda: offers.require_provider(
        principal=sender, offer=SimpleNamespace(provider_org="awo-leverkusen")))
    found += raised(lambda: offers.update(
        session=None, principal=sender, data={"min_age": 30, "max_age": 20},
        offer=SimpleNamespace(provider_org="jmd-leverkusen", min_age=None, max_age=None)))

    found += raised(lambda: alliance_in_scope(principal=person("core_group", alliance=None),
                                              requested=None))
    found += raised(lambda: alliance_in_scope(principal=person("core_group"),
                                              requested="rhein-kreis-neuss"))
    found += raised(lambda: alliance_in_scope(principal=person("case_worker"), requested=None))
    return found


def notification_and_gateway_messages() -> list[Found]:
    from buendnis_common import policy
    from gateway.audit.views import AuditQuery
    from notifications.inbox.schemas import NotificationQuery, Preferences
    from notifications.reminder.schemas import ReminderQuery

    found: list[Found] = []
    found += schema_errors(NotificationQuery(), {"kind": "x", "unread": "maybe"})
    found += schema_errors(Preferences(), {"email_copies": "all"})
    found += schema_errors(Preferences(), {"email_copies": {"x": True}})
    found += schema_errors(ReminderQuery(), {"appointment_id": "x"})
    found += schema_errors(AuditQuery(), {"actor": "", "from": "2030-02-01T00:00:00+00:00",
                                          "to": "2030-01-01T00:00:00+00:00"})
    decision = policy.decide(person("case_worker"), "/api/v1/reports/referrals", "GET")
    found.append((decision.message, None))
    decision = policy.decide(person(), "/api/v1/reports/referrals", "GET")
    found.append((decision.message, None))
    decision = policy.decide(person("case_worker"), "/api/v1/me", "DELETE")
    found.append((decision.message, None))
    for claims in ({}, {"organization": {"a": {}, "b": {}}}):
        found += raised(lambda claims=claims: principal_from_claims(
            claims, require_organization=True))
    return found


def service_app_messages() -> list[Found]:
    """What webargs, flask-smorest and the common error handler answer, in a small service."""
    import flask_smorest.pagination  # noqa: F401 - patched by buendnis_common.web
    from flask_smorest import Api, Blueprint

    import buendnis_common.web  # noqa: F401 - bounds the page number
    from gateway.protection import RateLimited, rate_limited
    from intake.importer.views import blp as import_blp
    from intake.participant.schemas import NeedUpdate, ParticipantCreate

    service = Flask("service")
    service.config.update(API_TITLE="t", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
                          MAX_CONTENT_LENGTH=64 * 1024)
    api = Api(service)
    blp = Blueprint("things", "things", url_prefix="/things")

    @blp.route("")
    class Things(MethodView):
        @blp.arguments(ParticipantCreate)
        @blp.response(201)
        def post(self, data):
            return {}

        @blp.response(200)
        @blp.paginate(page_size=25, max_page_size=100)
        def get(self, pagination_parameters):
            return []

    @blp.route("/one")
    class One(MethodView):
        @blp.etag
        @blp.arguments(NeedUpdate)
        @blp.response(200)
        def patch(self, data):
            blp.check_etag({"version": 1})
            return {"version": 1}

    api.register_blueprint(blp)
    api.register_blueprint(import_blp)
    register_error_handlers(service)
    client = service.test_client()

    answers = [
        client.post("/things", json={"given_name": ""}),
        client.post("/things", data="{not json", content_type="application/json"),
        client.get("/things?page=0&page_size=500"),
        client.delete("/things"),
        client.patch("/things/one", json={}),
        client.patch("/things/one", json={}, headers={"If-Match": '"stale"'}),
        client.post("/things", data=b"x" * (65 * 1024), content_type="application/json"),
        client.post("/api/v1/participants/import", data={
            "mode": "all_or_nothing",
            "file": (io.BytesIO(b"vorname;nachname;geburtsdatum;aufenthaltsstatus\n"
                                b";B;01.01.2000;duldung\n"), "list.csv")}),
    ]
    found: list[Found] = []
    for response in answers:
        body = response.get_json()
        assert body and body.get("message"), (response.status_code, response.data[:200])
        found.append((body["message"], None))
        found += [item for item in flatten(body.get("errors") or {})
                  if not (item[1] or "").startswith("rows.")]
    with service.app_context():
        found.append((rate_limited(RateLimited(30)).get_json()["message"], None))
    return found


@pytest.fixture(scope="module")
def genuine() -> list[Found]:
    found = (intake_messages() + referral_messages() + notification_and_gateway_messages()
             + service_app_messages())
    # ``allowed`` beside a refused status lists codes, which stay codes.
    return [item for item in dict.fromkeys(found) if item[1] != "allowed"]


# --- the tests ----------------------------------------------------------------------------

def test_every_genuine_message_comes_out_german(page, genuine):
    untranslated = [(message, field) for message, field in genuine
                    if localize(message, field) == message]
    assert not untranslated, "not in web/web/api_messages.py:\n" + "\n".join(
        f"{message!r} (field {field})" for message, field in untranslated)


def test_the_german_texts_come_from_the_catalogue(page, genuine):
    """With the page in English, every text goes through a message id pybabel extracts."""
    with force_locale("en"):
        outside = [message for message, field in genuine
                   if not localize(message, field).startswith(EN_MARK)]
    assert not outside, outside


def test_every_rule_of_the_table_meets_a_genuine_message(genuine):
    """A rule that no service message matches any more is a changed wording (or dead)."""
    rules = (*api_messages.RULES, *api_messages.LIST_RULES)
    unmatched = [pattern.pattern for pattern, _render in rules
                 if not any(pattern.match(message) for message, _field in genuine)]
    assert not unmatched, unmatched


def test_message_ids_are_literal_and_extractable():
    source = MODULE.read_text(encoding="utf-8")
    calls = re.findall(r"\b(?:_|ngettext)\(\s*(.)", source)
    assert calls and all(first == '"' for first in calls), "message ids must be literal strings"
    ids = extracted_ids()
    assert len(ids) == len(calls)
    assert len(set(ids)) > 100
    for message in ids:
        for text in message if isinstance(message, tuple) else (message,):
            assert re.search(r"[A-Za-z]", text)
            # Parameters are named, so that a translation may order them freely.
            assert not re.search(r"%(?!\(\w+\)s)", text), text


@pytest.mark.parametrize(("english", "german"), [
    ("Missing data for required field.", "Diese Angabe fehlt."),
    ("Not a valid date.", "Kein gültiges Datum."),
    ("Length must be between 1 and 200.", "Bitte zwischen 1 und 200 Zeichen eingeben."),
    ("Longer than maximum length 2000.", "Bitte höchstens 2000 Zeichen eingeben."),
    ("Must be greater than or equal to 0 and less than or equal to 25.",
     "Bitte einen Wert von 0 bis 25 angeben."),
    ("Must be one of: sms, email, none.", "Bitte einen dieser Werte wählen: sms, email, none."),
    ("Say why the referral is rejected.",
     "Bitte geben Sie einen Grund an, warum die Vermittlung den Status „abgelehnt“ bekommt."),
    ("A referral that is requested cannot become completed. You can set: cancelled.",
     "Eine Vermittlung mit dem Status „angefragt“ kann nicht in den Status „abgeschlossen“ "
     "wechseln. Sie können jetzt setzen: cancelled."),
    ("Only the receiver can set accepted. You can set: cancelled.",
     "Nur die empfangende Organisation kann den Status „angenommen“ setzen. Sie können jetzt "
     "setzen: cancelled."),
    ("The participant has not consented to share data with caritas-leverkusen for a referral "
     "(or the consent has expired or was withdrawn). Record the consent first.",
     "Die Person hat nicht eingewilligt, für eine Vermittlung Daten mit caritas-leverkusen zu "
     "teilen (oder die Einwilligung ist abgelaufen oder wurde widerrufen). Bitte erfassen Sie "
     "zuerst die Einwilligung."),
    ("The programme is for people aged 18 to 27 at intake; this birth date gives 40. To "
     "register anyway, give eligibility_override_reason.",
     "Das Programm ist für Menschen, die bei der Aufnahme 18 bis 27 Jahre alt sind; nach diesem "
     "Geburtsdatum ist die Person 40. Um sie trotzdem aufzunehmen, geben Sie eine Begründung "
     "für eine Ausnahme vom Alter an."),
    ("There is no organisation 'nowhere' in your alliance.",
     "In Ihrem Bündnis gibt es keine Organisation „nowhere“."),
])
def test_german_wording(page, english, german):
    assert localize(english) == german


def test_lists_count_entries_not_characters(page):
    assert localize("Longer than maximum length 20.", "languages") == \
        "Bitte höchstens 20 Einträge angeben."
    assert localize("Shorter than minimum length 1.", "data_categories") == \
        "Bitte mindestens 1 Eintrag angeben."
    assert localize("Longer than maximum length 20.", "contact.phone") == \
        "Bitte höchstens 20 Zeichen eingeben."


def test_unknown_messages_pass_unchanged(page):
    for message in ("Something entirely new happened.", "", "Bitte prüfen Sie die Angaben.",
                    "Must be one of"):
        assert localize(message) == message


def test_api_error_gives_localized_texts(page):
    error = ApiError(422, "Some fields are missing or invalid.", {
        "given_name": ["Missing data for required field."],
        "contact": {"phone": ["Not a phone number in international E.164 form "
                              "(e.g. +4917612345678)."]},
        "languages": {"1": ["Not an ISO 639-1 language code (e.g. ar, fa, uk, de)."]},
        "allowed": ["cancelled"],
        "custom": ["Eigene Nachricht."],
    })
    assert error.message == "Some fields are missing or invalid."
    assert error.localized_message == "Einige Angaben fehlen oder sind ungültig."
    assert error.field_errors() == {
        "given_name": "Diese Angabe fehlt.",
        "contact.phone": "Keine Telefonnummer im internationalen Format E.164 "
                         "(z. B. +4917612345678).",
        "languages.1": "Kein Sprachcode nach ISO 639-1 (z. B. ar, fa, uk, de).",
        "allowed": "cancelled",
        "custom": "Eigene Nachricht.",
    }
    with force_locale("en"):
        assert error.localized_message == EN_MARK + "Einige Angaben fehlen oder sind ungültig."
