"""Benchmark: what the gateway adds to a call, under the production server (gunicorn).

Starts the real platform (gateway: gunicorn gthread, 2 workers × 8 threads; intake: gunicorn,
2 sync workers), registers 50 participants, then measures two requests, each both through the
gateway and straight at the intake service (which checks the token itself too):
- GET /api/v1/me (the gateway answers it itself; intake answers the same path);
- GET /api/v1/participants?page_size=50 (a list of 50).
Both paths of a request run in the same process, in alternating rounds, with CONCURRENCY client
threads. Prints median and 99th percentile latency, throughput, and the ratios.

    .venv/bin/python bench/gateway_overhead.py [--requests 2000] [--rounds 4] [--concurrency 8]
        [--only me]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.platform import Platform  # noqa: E402


class PatientPlatform(Platform):
    """The platform, waiting longer for each process: on a loaded machine a start takes longer
    than the tests' 30 s, and the figures are taken only once everything answers."""

    def wait_http(self, url, timeout=180, **kwargs):
        return super().wait_http(url, timeout=timeout, **kwargs)


def measure(url: str, token: str, count: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = count // concurrency

    errors: list[str] = []

    def client():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        mine = []
        for _ in range(per_thread):
            started = time.perf_counter()
            response = session.get(url, timeout=30)
            mine.append(time.perf_counter() - started)
            if response.status_code != 200:
                # A thread cannot end the run (SystemExit there is swallowed): report it below.
                with lock:
                    errors.append(f"{url}: {response.status_code} {response.text[:200]}")
                return
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(errors[0])
    return latencies, len(latencies) / elapsed


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", choices=("me", "list of 50"), default=None,
                        help="measure one of the two requests (quicker repeated runs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        platform = PatientPlatform(Path(workdir), extra_env={"LOG_LEVEL": "WARNING"})
        try:
            platform.start_all()
            client = platform.as_user("cw.jmd-leverkusen")
            for i in range(50):
                client.post("/api/v1/participants", json={
                    "given_name": f"Bench{i}", "family_name": "Liste",
                    "birth_date": f"{date.today().year - 21}-05-05",
                    "residence_status": "duldung", "needs": [{"category": "housing"}]})
            paths = {"me": "/api/v1/me", "list of 50": "/api/v1/participants?page_size=50"}
            if args.only:
                paths = {args.only: paths[args.only]}
            results: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
            for _round in range(args.rounds):
                # A fresh token per round: on a loaded machine a run outlasts a token's minutes.
                token = platform.token("cw.jmd-leverkusen")
                for label, path in paths.items():
                    for route, base in (("direct", platform.service_urls["intake"]),
                                        ("gateway", platform.gateway_url)):
                        latencies, throughput = measure(base + path, token,
                                                        args.requests // args.rounds,
                                                        args.concurrency)
                        lat, thr = results.setdefault((label, route), ([], []))
                        lat.extend(latencies)
                        thr.append(throughput)
        finally:
            platform.close()
    print(f"{args.requests} requests per path in {args.rounds} alternating rounds, "
          f"{args.concurrency} client threads; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    for label in paths:
        direct_lat, direct_thr = results[(label, "direct")]
        gate_lat, gate_thr = results[(label, "gateway")]
        d_med, g_med = statistics.median(direct_lat), statistics.median(gate_lat)
        d_thr, g_thr = statistics.median(direct_thr), statistics.median(gate_thr)
        print(f"{label}: direct median {d_med * 1000:.1f} ms, p99 {p99(direct_lat) * 1000:.1f} "
              f"ms, {d_thr:.0f} req/s | gateway median {g_med * 1000:.1f} ms, p99 "
              f"{p99(gate_lat) * 1000:.1f} ms, {g_thr:.0f} req/s | gateway adds "
              f"{(g_med / d_med - 1) * 100:+.0f} % to the median, keeps "
              f"{g_thr / d_thr * 100:.0f} % of the throughput")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
