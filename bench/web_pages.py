"""Benchmark: what a web page costs on top of the API calls it makes.

Starts the real platform (the web front end and the gateway each under gunicorn gthread,
2 workers × 8 threads), registers PARTICIPANTS (50) participants as cw.jmd-leverkusen, a
Caritas offer, a consent for Caritas and a referral, signs in to the web front end without a
browser (the identity provider's login form, one session per client thread) and measures three
pages:

- the start page ``/``;
- the participant list ``/teilnehmende/`` (first page of 25);
- a referral's detail ``/vermittlungen/<id>``.

The baseline of a page is the same API calls it makes, sent one after the other by the client
straight to the gateway with a bearer token: what the page cannot avoid. What the page adds is
the session in Redis, the token handling, the extra hop and rendering. Both run in the same
process, in alternating rounds, with CONCURRENCY client threads. Prints median and 99th
percentile latency, throughput, the ratios, and the peak memory of the web workers.

    .venv/bin/python bench/web_pages.py [--requests 400] [--rounds 4] [--concurrency 4]
                                        [--participants 50]
"""
from __future__ import annotations

import argparse
import html
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urljoin

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.platform import Platform  # noqa: E402

USER = "cw.jmd-leverkusen"
PROVIDER = "cw.caritas-leverkusen"
LOGIN_FORM = re.compile(r'<form[^>]*\bid="kc-form-login"[^>]*\baction="([^"]+)"', re.S)


def sign_in(platform: Platform, username: str, password: str = "demo") -> requests.Session:
    """A signed-in web session, the way a browser gets one: the start page sends it to the
    identity provider's login page, whose form sends it back to the start page."""
    session = requests.Session()
    login_page = session.get(platform.web_url + "/", timeout=30)
    found = LOGIN_FORM.search(login_page.text)
    if login_page.status_code != 200 or not found:
        raise SystemExit(f"no login form at {login_page.url}: {login_page.status_code}")
    action = urljoin(login_page.url, html.unescape(found.group(1)))
    start = session.post(action, data={"username": username, "password": password},
                         allow_redirects=True, timeout=30)
    if (start.status_code != 200 or not start.url.startswith(platform.web_url)
            or "Eingang" not in start.text):
        raise SystemExit(f"sign-in did not end on the start page: {start.status_code} "
                         f"{start.url}")
    return session


def measure(one: Callable[[int], None], count: int, concurrency: int) -> tuple[list[float], float]:
    """``one(thread_index)`` ``count`` times over ``concurrency`` threads: latencies and
    requests per second."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    per_thread = count // concurrency

    def client(index: int) -> None:
        mine = []
        try:
            for _ in range(per_thread):
                started = time.perf_counter()
                one(index)
                mine.append(time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"failed: {errors[0]}")
    return latencies, len(latencies) / elapsed


def check(response: requests.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{response.url}: {response.status_code} {response.text[:200]}")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def prepare(platform: Platform, participants: int) -> tuple[str, str]:
    """The data the pages show; returns the referral's and the offer's id."""
    client = platform.as_user(USER)
    participant_ids = []
    for i in range(participants):
        created = client.post("/api/v1/participants", json={
            "given_name": f"Bench{i}", "family_name": "Liste",
            "birth_date": f"{date.today().year - 21}-05-05",
            "residence_status": "duldung", "needs": [{"category": "housing"}]})
        if created.status_code != 201:
            raise SystemExit(f"participant: {created.status_code} {created.text[:200]}")
        participant_ids.append(created.json()["id"])
    offer = platform.as_user(PROVIDER).post(
        "/api/v1/offers", json={"title": "Deutschkurs B1", "category": "language_course"})
    if offer.status_code != 201:
        raise SystemExit(f"offer: {offer.status_code} {offer.text[:200]}")
    participant_id = participant_ids[0]
    consent = client.post(f"/api/v1/participants/{participant_id}/consents", json={
        "recipient_org": "caritas-leverkusen", "data_categories": ["languages", "needs"],
        "purpose": "referral", "valid_until": (date.today() + timedelta(days=365)).isoformat()})
    if consent.status_code != 201:
        raise SystemExit(f"consent: {consent.status_code} {consent.text[:200]}")
    referral = client.post("/api/v1/referrals", json={
        "participant_id": participant_id, "to_org": "caritas-leverkusen",
        "need_category": "language_course", "offer_id": offer.json()["id"]})
    if referral.status_code != 201:
        raise SystemExit(f"referral: {referral.status_code} {referral.text[:200]}")
    return referral.json()["id"], offer.json()["id"]


def pages(referral_id: str, offer_id: str) -> dict[str, tuple[str, list[str]]]:
    """Label → (page, the API calls the page makes, as web/web/views/ make them)."""
    referral = f"/api/v1/referrals/{referral_id}"
    return {
        "start page": ("/", [
            "/api/v1/notifications?page=1&page_size=20",
            "/api/v1/appointments?status=booked&page_size=10",
        ]),
        "participant list": ("/teilnehmende/", [
            "/api/v1/participants?page=1&page_size=25",
        ]),
        "referral detail": (f"/vermittlungen/{referral_id}", [
            referral,
            f"/api/v1/offers/{offer_id}",
            f"{referral}/history",
            f"{referral}/messages",
            f"{referral}/appointments",  # none booked: no call per appointment
            # the organisations' names: kept in the session for ten minutes, so not per page
        ]),
    }


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The parent's id is the second field after the command name in parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--participants", type=int, default=50,
                        help="registered first (the list page shows 25 of them)")
    args = parser.parse_args()
    results: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    left_out = []
    with tempfile.TemporaryDirectory() as workdir:
        platform = Platform(Path(workdir), extra_env={"LOG_LEVEL": "WARNING"})
        try:
            platform.start_all()
            paths = pages(*prepare(platform, args.participants))
            browsers = [sign_in(platform, USER) for _ in range(args.concurrency)]
            for label, (page, _calls) in list(paths.items()):
                answer = browsers[0].get(platform.web_url + page, timeout=30,
                                         allow_redirects=False)
                if answer.status_code != 200:
                    # Named and left out, so that the other pages are still measured.
                    errors = [line for line in platform.log("web").splitlines()
                              if line and not line.startswith(("[", " "))]
                    print(f"{label} ({page}) answers {answer.status_code}, not measured: "
                          f"{errors[-1] if errors else 'see the web log'}")
                    del paths[label]
                    left_out.append(label)
            for _round in range(args.rounds):
                for label, (page, calls) in paths.items():
                    # A fresh token per measurement: an access token lives 5 minutes.
                    token = platform.token(USER)
                    direct = []
                    for _ in range(args.concurrency):
                        api = requests.Session()
                        api.headers["Authorization"] = f"Bearer {token}"
                        direct.append(api)

                    def by_api(index: int, calls=calls, direct=direct) -> None:
                        for call in calls:
                            check(direct[index].get(platform.gateway_url + call, timeout=30))

                    def by_page(index: int, page=page) -> None:
                        check(browsers[index].get(platform.web_url + page, timeout=30,
                                                  allow_redirects=False))

                    for route, one in (("direct", by_api), ("web", by_page)):
                        latencies, throughput = measure(one, args.requests // args.rounds,
                                                        args.concurrency)
                        lat, thr = results.setdefault((label, route), ([], []))
                        lat.extend(latencies)
                        thr.append(throughput)
            web = platform.processes["web"].pid
            workers = {pid: peak_rss_mb(pid) for pid in children(web)}
        finally:
            platform.close()
    print(f"{args.requests} requests per page and route in {args.rounds} alternating rounds, "
          f"{args.concurrency} client threads")
    for label, (page, calls) in paths.items():
        d_lat, d_thr = results[(label, "direct")]
        w_lat, w_thr = results[(label, "web")]
        d_med, w_med = statistics.median(d_lat), statistics.median(w_lat)
        d_tp, w_tp = statistics.median(d_thr), statistics.median(w_thr)
        shown = page.replace(page.rsplit("/", 1)[-1], "<id>") if "/vermittlungen/" in page \
            else page
        print(f"{label} ({shown}, "
              f"{len(calls)} API calls): direct median {d_med * 1000:.1f} ms, p99 "
              f"{p99(d_lat) * 1000:.1f} ms, {d_tp:.0f} req/s | web median "
              f"{w_med * 1000:.1f} ms, p99 {p99(w_lat) * 1000:.1f} ms, {w_tp:.0f} req/s | "
              f"web/direct median {w_med / d_med:.2f} ×, keeps {w_tp / d_tp * 100:.0f} % of "
              f"the throughput")
    peaks = [f"{mb:.0f} MB" for mb in workers.values() if mb is not None]
    if peaks:
        print(f"web workers' peak RSS (VmHWM): {', '.join(peaks)}")
    return 1 if left_out else 0


if __name__ == "__main__":
    raise SystemExit(main())
