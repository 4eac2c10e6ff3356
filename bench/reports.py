"""Benchmark: the reports over 1,000,000 referrals and 5,000,000 history rows in 50 alliances.

Starts a throw-away PostgreSQL (as .ci/run does: the ``postgres`` user when run as root, data
under /tmp, a loopback port, fsync off) unless ``--url`` names one, migrates the referrals
database to head, fills it inside PostgreSQL (``INSERT … SELECT`` over ``generate_series``: no
rows cross the wire: the platform's flush hook never sees them, as with a database that held
referrals before the aggregate), rebuilds the reports' aggregate (``referrals.report.aggregate``,
timed), runs ANALYZE, and then times the report functions the views call, each ``--repeat``
times, printing the median and 99th percentile — from the aggregate, and the same report as a
full recount (``recount=True``) in the same run, with their ratio:

- one alliance's referral report (about 20,000 referrals), ungrouped and grouped by
  ``to_org,status,month`` (a grouping or a period always counts from the referrals);
- the state-wide referral report (all 1,000,000, one row per alliance);
- gaps and stuck, for one alliance and state-wide.

Last, what keeping the aggregate costs a write: ``--writes`` referrals made and then answered
through the ORM, one transaction each, with the aggregate kept and without.

    .venv/bin/python bench/reports.py [--referrals 1000000] [--history 5] [--alliances 50]
                                      [--repeat 30] [--writes 300] [--url postgresql+psycopg://…]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text, update
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from buendnis_common import migrate  # noqa: E402
from referrals import models  # noqa: E402,F401 - every table known
from referrals.referral.models import Referral  # noqa: E402
from referrals.report import aggregate, service  # noqa: E402

STATUSES = ["requested", "accepted", "rejected", "cancelled", "in-progress", "on-hold",
            "completed", "failed"]


class Postgres:
    """A PostgreSQL of its own under /tmp, stopped and removed at the end."""

    def __init__(self) -> None:
        self.bin = Path(shutil.which("initdb") or sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="buendnis-bench-pg."))
        self.data = self.root / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres")

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                        "-c shared_buffers=256MB -c maintenance_work_mem=256MB "
                        "-c max_wal_size=4GB", "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


FILL_REFERRALS = """
INSERT INTO referrals (id, participant_id, pseudonym, from_org, to_org, alliance, need_category,
    status, shared_categories, sender_user, sender_user_id, created_at, updated_at, due_at,
    overdue_at, answered_at, closed_at, person_key, version)
SELECT gen_random_uuid(), p, NULL,
    'org-' || a || '-' || (i / :alliances % 8), 'org-' || a || '-' || ((i / :alliances + 3) % 8),
    'alliance-' || a, (ARRAY[:categories])[1 + (i / 7) % 12], s, '[]'::json,
    'bench', 'bench', c, c, c + interval '7 days',
    CASE WHEN s = 'requested' AND i % 3 = 0 THEN c + interval '8 days' END,
    CASE WHEN s NOT IN ('requested') THEN c + (i % 97) * interval '1 hour' END,
    CASE WHEN s IN ('rejected', 'cancelled', 'completed', 'failed')
         THEN c + (i % 97) * interval '1 hour' + interval '3 days' END,
    hashtext(p::text)::bigint & 4294967295,
    1
FROM (
    SELECT i, i % CAST(:alliances AS integer) AS a,
        lpad(to_hex(i % :participants), 32, '0')::uuid AS p,
        (ARRAY[:statuses])[1 + (i * 7919) % 8] AS s,
        timestamptz '2024-01-01 00:00+00' + (i % 730) * interval '1 day'
            + (i % 86400) * interval '1 second' AS c
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
) AS generated
"""

FILL_HISTORY = """
INSERT INTO referral_history (referral_id, status, previous_status, organization, "user", at,
    reason)
SELECT r.id, (ARRAY[:statuses])[1 + n], (ARRAY[:statuses])[n], r.to_org, 'bench',
    r.created_at + n * interval '1 hour', NULL
FROM referrals r CROSS JOIN generate_series(1, CAST(:per_referral AS integer)) AS n
"""


def fill(url: str, *, referrals: int, history: int, alliances: int) -> None:
    engine = create_engine(url)
    categories = list(service.NEED_CATEGORIES)
    params = {"alliances": alliances, "participants": max(referrals // 3, 1)}
    bind = {f"c{i}": c for i, c in enumerate(categories)} | {
        f"s{i}": s for i, s in enumerate(STATUSES)}
    as_array = {
        ":categories": ", ".join(f":c{i}" for i in range(len(categories))),
        ":statuses": ", ".join(f":s{i}" for i in range(len(STATUSES))),
    }

    def sql(statement: str) -> str:
        for name, values in as_array.items():
            statement = statement.replace(name, values)
        return statement

    started = time.monotonic()
    chunk = 200_000
    with engine.begin() as connection:
        for first in range(0, referrals, chunk):
            last = min(first + chunk, referrals) - 1
            connection.execute(text(sql(FILL_REFERRALS)),
                               {**params, **bind, "first": first, "last": last})
        print(f"  {referrals:,} referrals in {time.monotonic() - started:.0f} s", flush=True)
        # Every person's record key, as the platform draws one at their first referral and
        # copies it onto each referral (here a hash of the person, good enough for timing).
        connection.execute(text(
            "INSERT INTO report_person_keys (participant_id, record_key)"
            " SELECT participant_id, hashtext(participant_id::text)::bigint & 4294967295"
            " FROM (SELECT DISTINCT participant_id FROM referrals) AS people"))
        connection.execute(text(sql(FILL_HISTORY)), {**bind, "per_referral": history})
        print(f"  {referrals * history:,} history rows after {time.monotonic() - started:.0f} s",
              flush=True)
        for a in range(alliances):
            for n, category in enumerate(categories):
                connection.execute(text(
                    "INSERT INTO offers (id, provider_org, alliance, title, category,"
                    " eligible_residence_statuses, capacity, active, created_by, created_at,"
                    " updated_at, version) VALUES (gen_random_uuid(), :org, :alliance, 'Angebot',"
                    " :category, '[]', :capacity, true, 'bench', now(), now(), 1)"),
                    {"org": f"org-{a}-{n % 8}", "alliance": f"alliance-{a}",
                     "category": category, "capacity": 5 + n})
                connection.execute(text(
                    "INSERT INTO report_need_counts (alliance, category, open_needs)"
                    " VALUES (:alliance, :category, :count)"),
                    {"alliance": f"alliance-{a}", "category": category, "count": (a + n) % 40})
    print(f"  filled in {time.monotonic() - started:.0f} s", flush=True)
    rebuilt = time.monotonic()
    with Session(engine) as session, session.begin():
        counted = aggregate.rebuild(session)
    print(f"  aggregate rebuilt in {time.monotonic() - rebuilt:.1f} s ({counted['persons']:,} "
          f"(alliance, person) rows, {counted['answer_times']:,} answer times)", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    print(f"  analysed after {time.monotonic() - started:.0f} s", flush=True)
    engine.dispose()


def writes(engine, count: int) -> float:
    """Median ms to make a referral and, in a second transaction, answer it (ORM, as the
    platform does), for persons already referred."""
    times = []
    for i in range(count):
        participant = uuid.UUID(int=i * 7 + 1)
        now = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=i)
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            referral = Referral(
                id=uuid.uuid4(), participant_id=participant, from_org="org-7-1", to_org="org-7-2",
                alliance="alliance-7", need_category=service.NEED_CATEGORIES[0],
                status="requested", sender_user="bench", sender_user_id="bench",
                shared_categories=[], created_at=now, updated_at=now,
                due_at=now + timedelta(days=7))
            session.add(referral)
            referral_id = referral.id
        with Session(engine) as session, session.begin():
            referral = session.get(Referral, referral_id)
            referral.status, referral.answered_at = "accepted", now + timedelta(hours=5)
        times.append((time.perf_counter() - started) * 1000 / 2)
    return statistics.median(times)


def timed(session: Session, call: Callable[[], object], repeat: int) -> tuple[float, float]:
    call()  # warm the cache and the plan
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
        session.rollback()
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=5, help="history rows per referral")
    parser.add_argument("--alliances", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--writes", type=int, default=300,
                        help="referrals made and answered to time the aggregate's write cost")
    parser.add_argument("--url", help="an empty PostgreSQL database to use instead")
    args = parser.parse_args()

    postgres = None if args.url else Postgres()
    url = args.url or postgres.start()
    try:
        migrate.upgrade("referrals", url)
        print(f"filling: {args.referrals:,} referrals, {args.referrals * args.history:,} "
              f"history rows, {args.alliances} alliances", flush=True)
        fill(url, referrals=args.referrals, history=args.history, alliances=args.alliances)
        engine = create_engine(url)
        cases = {
            "referrals, one alliance": lambda s, r: service.referrals_report(
                session=s, alliance="alliance-7", recount=r),
            "referrals, one alliance, by to_org,status,month, 2025": lambda s, r:
                service.referrals_report(session=s, alliance="alliance-7",
                                         start=date(2025, 1, 1), end=date(2025, 12, 31),
                                         group_by=["to_org", "status", "month"], recount=r),
            "referrals, state-wide (one row per alliance)": lambda s, r: service.referrals_report(
                session=s, alliance=None, recount=r),
            "gaps, one alliance": lambda s, r: service.gaps_report(
                session=s, alliance="alliance-7", recount=r),
            "gaps, state-wide": lambda s, r: service.gaps_report(
                session=s, alliance=None, recount=r),
            "stuck, one alliance": lambda s, r: service.stuck_report(
                session=s, alliance="alliance-7", recount=r),
            "stuck, state-wide": lambda s, r: service.stuck_report(
                session=s, alliance=None, recount=r),
        }
        print(f"\n{'report':54} {'median ms':>9} {'p99 ms':>8} {'recount':>9} {'p99 ms':>8}"
              f" {'ratio':>7}   ({args.repeat} runs each)")
        with Session(engine) as session:
            for name, case in cases.items():
                kept = case(session, False).rows
                assert kept == case(session, True).rows, f"{name}: aggregate ≠ recount"
                median, p99 = timed(session, lambda case=case: case(session, False),
                                    args.repeat)
                full, full_p99 = timed(session, lambda case=case: case(session, True),
                                       args.repeat)
                print(f"{name:54} {median:9.1f} {p99:8.1f} {full:9.1f} {full_p99:8.1f}"
                      f" {median / full:7.3f}", flush=True)
        if args.writes:
            kept = writes(engine, args.writes)
            with engine.begin() as connection:
                connection.execute(update(aggregate.AggregateState).values(built_at=None))
            plain = writes(engine, args.writes)
            print(f"\nmake + answer a referral, per transaction (median of {args.writes}):"
                  f" {kept:.2f} ms with the aggregate kept, {plain:.2f} ms without"
                  f" ({kept / plain:.2f}×)")
        engine.dispose()
    finally:
        if postgres:
            postgres.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
