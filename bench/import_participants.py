"""Benchmark: importing a list of 10,000 participants through the gateway.

Starts the real platform (as the tests do: Redis, identity provider, services under gunicorn,
workers, gateway; SQLite, or PostgreSQL with BUENDNIS_TEST_PG_URL), then times
- the import of a 10,000-row CSV and a 10,000-row XLSX (all_or_nothing), each REPEATS times,
  from the upload until the report is there (lists above IMPORT_SYNC_MAX_ROWS are imported by
  the intake worker: the time includes polling the import's progress every 0.1 s);
- the baseline, in the same run: registering participants one POST at a time.
Prints medians and the ratio of the import's per-row time to the baseline's.

    .venv/bin/python bench/import_participants.py [--rows 10000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.platform import Platform  # noqa: E402

NEEDS = ["language_course", "vocational_training", "counselling", "internship", "housing"]
STATUSES = ["aufenthaltsgestattung", "duldung", "aufenthaltserlaubnis"]


def rows(count: int, run: int) -> list[list[str]]:
    year = date.today().year - 22
    return [
        [f"Vorname{run}x{i}", f"Familie{i % 997}", f"{1 + i % 28:02d}.{1 + i % 12:02d}.{year}",
         STATUSES[i % 3], "ar, de", f"+49151{10000000 + i:08d}", NEEDS[i % 5]]
        for i in range(count)
    ]


HEADER = ["Vorname", "Nachname", "Geburtsdatum", "Aufenthaltsstatus", "Sprachen", "Telefon",
          "Bedarfe"]


def as_csv(data: list[list[str]]) -> bytes:
    return "\n".join(";".join(row) for row in [HEADER, *data]).encode()


def as_xlsx(data: list[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    for row in data:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def import_list(client, kind: str, content: bytes) -> dict | None:
    """The row report: at once for a short list (201), or, for a long one (202), once the
    worker has finished it (polling the import's Location)."""
    response = client.post("/api/v1/participants/import",
                           files={"file": (f"liste.{kind}", io.BytesIO(content))}, timeout=600)
    if response.status_code == 201:
        return response.json()
    assert response.status_code == 202, response.text[:500]
    location = response.headers["Location"]
    while True:
        state = client.get(location).json()
        if state["status"] == "done":
            return state["report"]
        if state["status"] == "failed":
            print(state.get("message"))
            return None
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        platform = Platform(Path(workdir))
        try:
            platform.start_all()
            client = platform.as_user("cw.jmd-leverkusen")
            single = []
            for i in range(args.baseline):
                body = {"given_name": f"Single{i}", "family_name": "Baseline",
                        "birth_date": f"{date.today().year - 22}-03-01",
                        "residence_status": "duldung", "languages": ["ar", "de"],
                        "contact": {"phone": f"+49151{20000000 + i:08d}"},
                        "needs": [{"category": NEEDS[i % 5]}]}
                started = time.perf_counter()
                response = client.post("/api/v1/participants", json=body)
                single.append(time.perf_counter() - started)
                assert response.status_code == 201, response.text
            results = {}
            for kind, encode in (("csv", as_csv), ("xlsx", as_xlsx)):
                timings = []
                for run in range(args.repeats):
                    content = encode(rows(args.rows, run + (100 if kind == "xlsx" else 0)))
                    started = time.perf_counter()
                    report = import_list(client, kind, content)
                    timings.append(time.perf_counter() - started)
                    if report is None:
                        print(platform.log("intake-worker")[-4000:])
                    assert report is not None and len(report["imported"]) == args.rows
                results[kind] = timings
        finally:
            platform.close()
    baseline_row = statistics.median(single)
    print(f"database: {'PostgreSQL' if platform.postgres else 'SQLite'}")
    print(f"baseline: one POST /participants per person, median {baseline_row * 1000:.1f} ms "
          f"({args.baseline} requests)")
    for kind, timings in results.items():
        median = statistics.median(timings)
        per_row = median / args.rows
        print(f"import {args.rows} rows {kind.upper()}: median {median:.2f} s over "
              f"{len(timings)} runs (min {min(timings):.2f}, max {max(timings):.2f}), "
              f"{args.rows / median:,.0f} rows/s, {per_row * 1000:.2f} ms per row = "
              f"{per_row / baseline_row:.3f} × one POST")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
