"""A case worker registers, reads, changes and erases participants; nobody else sees them."""
from __future__ import annotations

import json
import uuid

from tests.intake.conftest import person, sql
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process
from tests.support.platform import wait_for


def test_registration_answers_201_with_location_etag_and_a_pseudonym(jmd):
    response = jmd.post("/api/v1/participants", json=person(given_name="Nour"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/api/v1/participants/{body['id']}"
    assert response.headers["ETag"]
    assert body["owner_org"] == "jmd-leverkusen"
    assert body["given_name"] == "Nour"
    assert body["pseudonym"].startswith("TN-") and len(body["pseudonym"]) == 8
    assert "Nour" not in body["pseudonym"]
    assert [n["category"] for n in body["needs"]] == ["language_course", "vocational_training"]
    assert {n["status"] for n in body["needs"]} == {"open"}
    assert body["contact"]["phone"] == "+4917612345678"
    assert body["possible_duplicates"] == []


def test_pseudonyms_are_unique(jmd):
    pseudonyms = {jmd.post("/api/v1/participants", json=person()).json()["pseudonym"]
                  for _ in range(20)}
    assert len(pseudonyms) == 20


def test_other_organisations_get_404_and_an_empty_list(platform, jmd, caritas, meerbusch,
                                                       registered):
    path = f"/api/v1/participants/{registered['id']}"
    for other in (caritas, meerbusch):  # same alliance, other alliance
        for method, extra in (("GET", ""), ("DELETE", ""), ("GET", "/export"),
                              ("GET", "/needs"), ("GET", "/consents")):
            response = other.request(method, path + extra)
            assert response.status_code == 404, (method, extra, response.text)
            assert registered["given_name"] not in response.text
        patch = other.patch(path, json={"municipality": "Köln"}, headers={"If-Match": "*"})
        assert patch.status_code == 404
        listed = other.get("/api/v1/participants", params={"q": registered["given_name"]})
        assert listed.status_code == 200 and listed.json() == []
    assert jmd.get(path).status_code == 200  # still there, unchanged
    assert jmd.get(path).json()["municipality"] == "Leverkusen"


def test_list_pages_and_filters(jmd):
    marker = uuid.uuid4().hex[:6]
    for i in range(3):
        jmd.post("/api/v1/participants", json=person(
            family_name=f"Filter{marker}", residence_status="duldung" if i else "other",
            needs=[{"category": "housing"}] if i == 2 else [{"category": "health"}]))
    base = {"q": f"filter{marker}"}
    everyone = jmd.get("/api/v1/participants", params=base)
    assert len(everyone.json()) == 3
    assert json.loads(everyone.headers["X-Pagination"])["total"] == 3
    page = jmd.get("/api/v1/participants", params={**base, "page": 2, "page_size": 2})
    assert len(page.json()) == 1
    assert json.loads(page.headers["X-Pagination"])["total_pages"] == 2
    assert len(jmd.get("/api/v1/participants",
                       params={**base, "residence_status": "duldung"}).json()) == 2
    housing = jmd.get("/api/v1/participants", params={**base, "need_category": "housing"}).json()
    assert len(housing) == 1 and housing[0]["needs"][0]["category"] == "housing"
    assert jmd.get("/api/v1/participants",
                   params={**base, "need_status": "met"}).json() == []
    bad = jmd.get("/api/v1/participants", params={"need_status": "finished"})
    assert bad.status_code == 422 and "need_status" in bad.json()["errors"]


def test_changes_need_the_current_etag(jmd, registered):
    path = f"/api/v1/participants/{registered['id']}"
    missing = jmd.patch(path, json={"municipality": "Köln"})
    assert missing.status_code == 428
    etag = jmd.get(path).headers["ETag"]
    changed = jmd.patch(path, json={"municipality": "Köln"}, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert changed.json()["municipality"] == "Köln"
    assert changed.headers["ETag"] != etag
    stale = jmd.patch(path, json={"municipality": "Bonn"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert jmd.get(path).json()["municipality"] == "Köln"


def test_need_status_is_updated_by_the_case_worker(platform, jmd, registered):
    need = registered["needs"][0]
    path = f"/api/v1/participants/{registered['id']}/needs/{need['id']}"
    etag = jmd.get(path).headers["ETag"]
    updated = jmd.patch(path, json={"status": "in_progress"}, headers={"If-Match": etag})
    assert updated.status_code == 200 and updated.json()["status"] == "in_progress"
    assert jmd.patch(path, json={"status": "done"},
                     headers={"If-Match": updated.headers["ETag"]}).status_code == 422
    added = jmd.post(f"/api/v1/participants/{registered['id']}/needs",
                     json={"category": "legal_advice"})
    assert added.status_code == 201 and added.json()["status"] == "open"
    events = sql(platform, "intake", "SELECT data FROM outbox WHERE type = 'need.changed'")
    payloads = [json.loads(d) if isinstance(d, str) else d for (d,) in events]
    mine = [p for p in payloads if p["participant_id"] == registered["id"]]
    assert {(p["category"], p["status"], p["previous_status"]) for p in mine} >= {
        ("language_course", "open", None), ("language_course", "in_progress", "open"),
        ("legal_advice", "open", None)}
    assert all(set(p) <= {"participant_id", "owner_org", "alliance", "need_id", "category",
                          "status", "previous_status"} for p in mine)


def test_every_read_and_write_is_audited_without_data(platform, jmd, registered):
    jmd.get(f"/api/v1/participants/{registered['id']}", headers={"X-Request-ID": "audit-read"})
    rows = sql(platform, "intake",
               "SELECT actor, actor_org, action, request_id FROM audit_log "
               "WHERE request_id = 'audit-read'")
    assert rows == [("cw.jmd-leverkusen", "jmd-leverkusen", "participant.read", "audit-read")]
    actions = {a for (a,) in sql(platform, "intake", "SELECT action FROM audit_log")}
    assert {"participant.create", "participant.read"} <= actions


def test_erasure_removes_the_person_everywhere(platform, jmd, registered):
    path = f"/api/v1/participants/{registered['id']}"
    assert jmd.delete(path).status_code == 204
    assert jmd.get(path).status_code == 404
    assert jmd.get(path + "/export").status_code == 404
    assert sql(platform, "intake", "SELECT given_name FROM participants WHERE given_name = :n",
               n=registered["given_name"]) == []
    assert sql(platform, "intake", "SELECT count(*) FROM needs WHERE participant_id = :p",
               p=uuid.UUID(registered["id"]).hex) == [(0,)]

    def reached_referrals():
        rows = sql(platform, "referrals", "SELECT participant_id FROM participant_erasures")
        return [r for (r,) in rows if str(uuid.UUID(str(r))) == registered["id"]]

    assert wait_for(reached_referrals, timeout=30, what="participant.erased reaching referrals")


def test_the_etag_of_a_registration_serves_the_next_change(jmd):
    created = jmd.post("/api/v1/participants", json=person())
    path = f"/api/v1/participants/{created.json()['id']}"
    assert created.headers["ETag"] == jmd.get(path).headers["ETag"]
    changed = jmd.patch(path, json={"gender": "diverse"},
                        headers={"If-Match": created.headers["ETag"]})
    assert changed.status_code == 200


def test_the_export_holds_everything_the_platform_keeps_about_the_person(platform, jmd):
    from datetime import date, timedelta

    created = jmd.post("/api/v1/participants", json=person(family_name="Exportfall")).json()
    jmd.post(f"/api/v1/participants/{created['id']}/consents", json={
        "recipient_org": "caritas-leverkusen", "data_categories": ["contact"],
        "valid_until": (date.today() + timedelta(days=30)).isoformat()})
    referral = jmd.post("/api/v1/referrals", json={
        "participant_id": created["id"], "to_org": "caritas-leverkusen",
        "need_category": "language_course", "note": "Bitte Rückruf"})
    assert referral.status_code == 201, referral.text
    export = jmd.get(f"/api/v1/participants/{created['id']}/export")
    assert export.status_code == 200, export.text
    body = export.json()
    assert body["participant"]["family_name"] == "Exportfall"
    assert [c["recipient_org"] for c in body["consents"]] == ["caritas-leverkusen"]
    assert {"participant.create", "consent.grant"} <= {e["action"] for e in body["access_log"]}
    assert [r["id"] for r in body["referrals"]["referrals"]] == [referral.json()["id"]]
    assert "notifications" in body
