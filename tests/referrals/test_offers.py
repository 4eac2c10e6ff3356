"""The alliance's offer catalogue: every member reads it, the provider curates its own offers,
another alliance sees nothing, and a case worker finds the offers that fit a participant."""
from __future__ import annotations

import json
import uuid

from tests.referrals.conftest import query, register, same_id
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process


def offer(**changes) -> dict:
    data = {"title": f"Sprachkurs B1 {uuid.uuid4().hex[:8]}", "category": "language_course",
            "description": "Abendkurs, 4x pro Woche", "languages": ["de"],
            "municipality": "Leverkusen", "mode": "in_person",
            "eligible_residence_statuses": [], "min_age": 18, "max_age": 27, "capacity": 12,
            "schedule": "Mo-Do 18-20 Uhr", "contact": "kurse@caritas-leverkusen.example"}
    data.update(changes)
    return data


def add(client, **changes) -> dict:
    response = client.post("/api/v1/offers", json=offer(**changes))
    assert response.status_code == 201, response.text
    return response.json()


def test_a_provider_adds_an_offer_that_its_alliance_reads_and_no_one_else(caritas, awo, users,
                                                                          meerbusch):
    response = caritas.post("/api/v1/offers", json=offer(title="Integrationskurs Wiesdorf",
                                                         category="integration_course"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["provider_org"] == "caritas-leverkusen"
    assert created["alliance"] == "leverkusen"
    assert created["active"] is True
    assert response.headers["Location"] == f"/api/v1/offers/{created['id']}"
    assert response.headers["ETag"]

    for reader in (awo, users["core.caritas-leverkusen"], users["coord.leverkusen"]):
        read = reader.get(f"/api/v1/offers/{created['id']}")
        assert read.status_code == 200
        assert read.json()["title"] == "Integrationskurs Wiesdorf"
    assert meerbusch.get(f"/api/v1/offers/{created['id']}").status_code == 404
    listed = meerbusch.get("/api/v1/offers", params={"page_size": 100}).json()
    assert created["id"] not in [item["id"] for item in listed]
    assert all(item["alliance"] == "rhein-kreis-neuss" for item in listed)


def test_only_case_workers_and_coordinators_add_offers(users):
    for username in ("core.caritas-leverkusen", "audit.jmd-leverkusen", "ministry.analyst"):
        response = users[username].post("/api/v1/offers", json=offer())
        assert response.status_code == 403, username
    assert users["coord.leverkusen"].post("/api/v1/offers", json=offer()).status_code == 201


def test_an_offer_is_validated(caritas):
    response = caritas.post("/api/v1/offers", json=offer(category="astrology", min_age=30,
                                                         max_age=20, languages=["deu"]))
    assert response.status_code == 422
    assert {"category", "languages"} <= set(response.json()["errors"])
    response = caritas.post("/api/v1/offers", json=offer(min_age=30, max_age=20))
    assert response.status_code == 422
    assert "max_age" in response.json()["errors"]
    assert caritas.post("/api/v1/offers", json={"category": "housing"}).status_code == 422


def test_only_the_provider_changes_its_offer_with_the_current_etag(caritas, awo, meerbusch):
    created = add(caritas)
    path = f"/api/v1/offers/{created['id']}"
    etag = caritas.get(path).headers["ETag"]

    assert caritas.patch(path, json={"capacity": 3}).status_code == 428
    # A partner of the alliance sees the offer, so it is told why it may not change it.
    partner = awo.patch(path, json={"capacity": 0}, headers={"If-Match": etag})
    assert partner.status_code == 403
    assert meerbusch.patch(path, json={"capacity": 0},
                           headers={"If-Match": etag}).status_code == 404

    changed = caritas.patch(path, json={"capacity": 3, "languages": ["de", "ar"]},
                            headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert changed.json()["capacity"] == 3
    assert sorted(changed.json()["languages"]) == ["ar", "de"]
    assert changed.headers["ETag"] != etag

    stale = caritas.patch(path, json={"capacity": 5}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert caritas.get(path).json()["capacity"] == 3


def test_the_catalogue_filters_by_category_language_and_provider_with_paging(caritas, awo):
    marker = uuid.uuid4().hex[:8]
    add(caritas, title=f"Beratung {marker} ar", category="counselling", languages=["ar"])
    add(caritas, title=f"Beratung {marker} ti", category="counselling", languages=["ti", "de"])
    add(awo, title=f"Beratung {marker} awo", category="counselling", languages=["ar"])
    add(caritas, title=f"Wohnen {marker}", category="housing", languages=["ar"])

    def titles(**params) -> list[str]:
        response = caritas.get("/api/v1/offers", params={"page_size": 100, **params})
        assert response.status_code == 200
        return sorted(o["title"] for o in response.json() if marker in o["title"])

    assert titles(category="counselling") == [f"Beratung {marker} ar", f"Beratung {marker} awo",
                                              f"Beratung {marker} ti"]
    assert titles(category="counselling", language="ar") == [f"Beratung {marker} ar",
                                                             f"Beratung {marker} awo"]
    assert titles(category="counselling", provider_org="awo-leverkusen") == [
        f"Beratung {marker} awo"]
    assert titles(language="ti") == [f"Beratung {marker} ti"]

    page = caritas.get("/api/v1/offers", params={"category": "counselling", "page_size": 2})
    assert len(page.json()) == 2
    pagination = json.loads(page.headers["X-Pagination"])
    assert pagination["total"] >= 3 and pagination["page"] == 1
    assert caritas.get("/api/v1/offers", params={"page_size": 1000}).status_code == 422


def test_an_inactive_offer_leaves_the_catalogue(caritas):
    created = add(caritas)
    path = f"/api/v1/offers/{created['id']}"
    closed = caritas.patch(path, json={"active": False},
                           headers={"If-Match": caritas.get(path).headers["ETag"]})
    assert closed.status_code == 200
    ids = [o["id"] for o in caritas.get("/api/v1/offers", params={"page_size": 100}).json()]
    assert created["id"] not in ids
    inactive = caritas.get("/api/v1/offers", params={"active": "false", "page_size": 100})
    assert created["id"] in [o["id"] for o in inactive.json()]


def test_a_case_worker_finds_the_offers_that_fit_a_participant_best_first(jmd, caritas, awo,
                                                                        platform):
    # Samira: 23, Aufenthaltsgestattung, speaks fa and de, lives in Leverkusen, needs a
    # language course and an internship.
    participant = register(jmd)
    m = uuid.uuid4().hex[:8]
    best = add(caritas, title=f"{m} Kurs auf Farsi", languages=["fa"], municipality="Leverkusen")
    good = add(awo, title=f"{m} Kurs auf Deutsch", languages=["de"], municipality="Köln")
    open_to_all = add(caritas, title=f"{m} Kurs ohne Sprache", languages=[], municipality=None)
    internship = add(awo, title=f"{m} Praktikum", category="internship", languages=["en"],
                     municipality=None)
    for unfit in (
        {"title": f"{m} nur Duldung", "eligible_residence_statuses": ["duldung"]},
        {"title": f"{m} ab 25", "min_age": 25, "max_age": 27},
        {"title": f"{m} voll", "capacity": 0},
        {"title": f"{m} Wohnung", "category": "housing"},
    ):
        add(caritas, **unfit)

    response = jmd.get("/api/v1/offers", params={"participant_id": participant["id"],
                                                 "page_size": 100})
    assert response.status_code == 200, response.text
    mine = [o for o in response.json() if o["title"].startswith(m)]
    assert [o["id"] for o in mine] == [best["id"], good["id"], open_to_all["id"],
                                       internship["id"]]
    assert "language:fa" in mine[0]["fit"]["reasons"]
    assert "municipality" in mine[0]["fit"]["reasons"]
    assert mine[0]["fit"]["score"] > mine[1]["fit"]["score"] > mine[2]["fit"]["score"]

    narrowed = jmd.get("/api/v1/offers", params={"participant_id": participant["id"],
                                                 "category": "internship", "page_size": 100})
    assert internship["id"] in [o["id"] for o in narrowed.json()]
    assert all(o["category"] == "internship" for o in narrowed.json())

    audited = query(platform, "referrals", "SELECT participant_id FROM audit_log "
                    "WHERE action = 'offer.match'")
    assert any(same_id(pid, participant["id"]) for (pid,) in audited)


def test_matching_is_only_for_the_callers_own_participant(jmd, awo, meerbusch):
    participant = register(jmd)
    for other in (awo, meerbusch):
        response = other.get("/api/v1/offers", params={"participant_id": participant["id"]})
        assert response.status_code == 404, response.text
    missing = jmd.get("/api/v1/offers", params={"participant_id": str(uuid.uuid4())})
    assert missing.status_code == 404
