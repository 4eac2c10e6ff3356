"""Benchmark: 10,000 appointments whose reminders fall due in the same minute.

Starts the real platform as the tests do (Redis, identity provider, services under gunicorn,
Celery workers and beat, the gateway, the SMTP sink ``buendnis_dev.smtp`` writing a Maildir;
SQLite, or PostgreSQL with BUENDNIS_TEST_PG_URL), with ``REMINDER_OFFSETS=10m``, then

1. imports N participants who chose e-mail (intake's CSV import, through the gateway) and
   records each one's consent to share contact data with the appointments' organisation
   (reminders go out only under a consent that holds when they are sent);
2. puts N ``appointment.booked`` events on the notifications queue, as the referrals service
   publishes them, with starts spread over one minute, 10 minutes after the due minute;
3. waits until every reminder is planned, then until every e-mail has reached the SMTP sink;
4. reads the sink's Maildir: every Message-ID (the reminder's idempotency key) must be there
   exactly once; the delay of each message is the file's write time minus its due time;
5. the baseline: one of those e-mails, as it arrived, sent again and again into the same sink by
   bare ``smtplib`` (no database, no rendering, no intake) — on one connection, and on
   ``--threads`` connections at once as the dispatcher's sending threads do; the workers' rate is
   printed as a ratio to the latter.

Prints the median and 99th percentile from due to delivered, and the throughput, and — as the
baseline from the same run — how many e-mails/s a bare ``smtplib`` loop gets into the same sink
(5. below: the floor no dispatcher can beat on this machine); with several
worker counts (``--workers 1,2,4``, each on a fresh platform) a table of them and each rate as a
ratio to one worker's. The aim: p99 due → delivered ≤ 60 s with one worker, and 2 workers at
least 1.7 × the rate of one — measure that with ``--spread 0`` (all due at once: the rate is the
workers' capacity, not the rate at which reminders fall due).

    .venv/bin/python bench/reminders.py [--appointments 10000] [--workers 1,2,4] [--threads 8]
"""
from __future__ import annotations

import argparse
import email
import email.policy
import os
import smtplib
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from celery import Celery
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.events import raw_rate  # noqa: E402
from bench.import_participants import import_list  # noqa: E402
from buendnis_common.events import EVENTS_TASK, envelope_data, event_batch_size  # noqa: E402
from tests.support.platform import ApiClient, Platform, wait_for  # noqa: E402

OFFSET = timedelta(minutes=10)
RECIPIENT = "caritas-leverkusen"  # the organisation holding the appointments


def participants_csv(count: int) -> bytes:
    year = date.today().year - 22
    lines = ["Vorname;Nachname;Geburtsdatum;Aufenthaltsstatus;E-Mail;Kanal;Kontaktsprache"]
    languages = ["de", "ar", "fa", "uk", "tr", "ru", "en"]
    for i in range(count):
        lines.append(f"Bench{i};Reminder{i % 991};{1 + i % 28:02d}.{1 + i % 12:02d}.{year};"
                     f"duldung;bench{i}@example.org;email;{languages[i % len(languages)]}")
    return "\n".join(lines).encode()


def scalar(url: str, statement: str, **params):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement), params).scalar()
    finally:
        engine.dispose()


def rows(url: str, statement: str, **params) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(statement), params)]
    finally:
        engine.dispose()


def utc(value: datetime | str) -> datetime:
    """A time as the database driver returns it (SQLite: text without offset, in UTC)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def grant_consents(platform: Platform, participant_ids: list[str], threads: int = 8) -> None:
    """Each participant's consent to share contact data with ``RECIPIENT``, recorded through
    the gateway as a case worker of the owner does (``threads`` requests at a time; a new
    token when the last one has expired, as a client refreshes it)."""
    body = {"recipient_org": RECIPIENT, "data_categories": ["identity", "contact", "languages"],
            "purpose": "referral", "valid_until": (date.today() + timedelta(days=90)).isoformat()}

    def grant(share: list[str]) -> None:
        client = ApiClient(platform.gateway_url, platform.token("cw.jmd-leverkusen"))
        for participant_id in share:
            path = f"/api/v1/participants/{participant_id}/consents"
            response = client.post(path, json=body)
            if response.status_code == 401:
                client = ApiClient(platform.gateway_url, platform.token("cw.jmd-leverkusen"))
                response = client.post(path, json=body)
            assert response.status_code == 201, response.text[:500]

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(grant, [participant_ids[n::threads] for n in range(threads)]))


def smtp_floor(port: int, payload: bytes, count: int, threads: int) -> float:
    """E-mails/s a bare smtplib loop gets into the sink: ``count`` messages over ``threads``
    connections, each kept open for all of its share (no connection set-up per message)."""
    def share(n: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as connection:
            for _ in range(n):
                connection.sendmail("bench@example.org", ["floor@example.org"], payload)

    shares = [count // threads + (1 if n < count % threads else 0) for n in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(share, shares))
    return count / (time.perf_counter() - started)


def sample_payload(path: Path) -> bytes:
    """A delivered reminder as it left the dispatcher: the file's bytes without the sink's own
    X- headers, with CRLF line ends as on the wire (smtplib sends bytes as they are)."""
    own = (b"X-Peer:", b"X-MailFrom:", b"X-RcptTo:")
    lines = path.read_bytes().replace(b"\r\n", b"\n").split(b"\n")
    return b"\r\n".join(line for line in lines if not line.startswith(own))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument("--workers", default="1",
                        help="notifications workers, or several counts to compare: 1,2,4")
    parser.add_argument("--threads", type=int, default=8, help="REMINDER_SEND_CONCURRENCY")
    parser.add_argument("--spread", type=float, default=60.0,
                        help="seconds over which the reminders fall due (default: a minute)")
    parser.add_argument("--lead", type=int, default=0,
                        help="seconds from the events to the due minute (default: estimated)")
    args = parser.parse_args()
    counts = [int(n) for n in str(args.workers).split(",") if n.strip()]
    results = []
    for workers in counts:
        args.workers = workers
        results.append(one(args))
        print()
    if len(results) > 1:
        base = results[0]["rate"]
        print(f"{'workers':>7} {'median s':>9} {'p99 s':>7} {'e-mails/s':>10} "
              f"{'× ' + str(counts[0]) + ' worker(s)':>14} {'bare smtplib/s':>15} "
              f"{'× bare':>7}  ok")
        for result in results:
            print(f"{result['workers']:>7} {result['median']:>9.1f} {result['p99']:>7.1f} "
                  f"{result['rate']:>10.0f} {result['rate'] / base:>14.2f} "
                  f"{result['floor']:>15.0f} {result['rate'] / result['floor']:>7.2f}  "
                  f"{result['ok']}")
    return 0 if all(result["ok"] for result in results) else 1


def one(args) -> dict:
    count = args.appointments
    print(f"load average before ({args.workers} worker(s)): "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as workdir:
        platform = Platform(Path(workdir), extra_env={
            "REMINDER_OFFSETS": "10m",
            "REMINDER_SEND_CONCURRENCY": str(args.threads),
            "REMINDER_DISPATCH_INTERVAL_SECONDS": "1",
            "SMS_QUIET_HOURS": "off",
            "LOG_LEVEL": "WARNING",
        })
        try:
            platform.start_all()
            # More workers of the same command, each under a name of its own.
            first = platform.processes.pop("notifications-worker")
            for n in range(1, args.workers):
                platform.start("notifications-worker")
                platform.processes[f"notifications-worker-{n}"] = platform.processes.pop(
                    "notifications-worker")
            platform.processes["notifications-worker"] = first
            return run(platform, count, args)
        finally:
            platform.close()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(platform: Platform) -> Counter[str]:
    """CPU seconds (user + system, with reaped children) so far of each platform process and
    its children (each runs in a process group of its own), of PostgreSQL's server processes
    and of this benchmark: where the machine's cores went."""
    groups = {process.pid: name for name, process in platform.processes.items()}
    seconds: Counter[str] = Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        name = (groups.get(int(fields[2]))  # its process group
                or ("postgres" if comm == "postgres" else None)
                or ("benchmark" if int(entry.name) == os.getpid() else None))
        if name:
            seconds[name] += sum(int(value) for value in fields[11:15]) / TICKS
    return seconds


def run(platform: Platform, count: int, args) -> int:
    jmd = platform.as_user("cw.jmd-leverkusen")
    started = time.perf_counter()
    report = import_list(jmd, "csv", participants_csv(count))  # in the worker above 1,000
    assert report is not None, "the import failed"
    participant_ids = [row["id"] for row in report["imported"]]
    assert len(participant_ids) == count
    print(f"imported {count} participants in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    grant_consents(platform, participant_ids)
    print(f"recorded {count} consents for {RECIPIENT} in {time.perf_counter() - started:.1f} s")

    # One worker consumes about 100 events/s on SQLite; give them time, then the minute.
    lead = args.lead or max(60, int(count / 60) + 30)
    due_minute = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
    sub = "5b47324b-9b61-5fe1-9cb2-5039497adf31"  # cw.jmd-leverkusen in the realm file
    raw = raw_rate(platform, 2000)  # the broker's rate now, for the ratio below
    celery = Celery(broker=platform.redis_url)
    started = time.perf_counter()
    events = []
    for i, participant_id in enumerate(participant_ids):
        start = due_minute + OFFSET + timedelta(seconds=args.spread * i / count)
        data = envelope_data("appointment.booked", {
            "referral_id": uuid.uuid4(), "participant_id": participant_id,
            "from_org": "jmd-leverkusen", "to_org": RECIPIENT,
            "alliance": "leverkusen", "need_category": "language_course",
            "sender_user_id": sub, "appointment_id": uuid.uuid4(), "start": start,
            "end": start + timedelta(hours=1), "mode": "in_person", "status": "booked"})
        events.append(platform.sign_event({
            "id": str(uuid.uuid4()), "type": "appointment.booked", "source": "referrals",
            "occurred_at": datetime.now(UTC).isoformat(), "data": data}))
    # As the relay sends them: EVENT_BATCH_SIZE signed events per message, one connection.
    size = event_batch_size()
    with celery.producer_or_acquire() as producer:
        for first in range(0, count, size):
            celery.send_task(EVENTS_TASK, queue="notifications", producer=producer,
                             args=[events[first:first + size]])
    celery.close()
    url = platform.database_urls["notifications"]
    wait_for(lambda: scalar(url, "SELECT count(*) FROM reminders") >= 2 * count,
             timeout=lead + 600, what="every reminder planned", interval=1)
    planned_at = datetime.now(UTC)
    seconds = time.perf_counter() - started
    print(f"{count} booking events published and {2 * count} reminders planned in "
          f"{seconds:.1f} s ({count / seconds:.0f} events/s, {count / seconds / raw:.2f} × the "
          f"{raw:.0f} bare Celery tasks/s measured just before); due from "
          f"{due_minute.isoformat()} ({(due_minute - planned_at).total_seconds():.0f} s later)")
    if planned_at > due_minute:
        print("WARNING: planning took longer than the lead; use --lead")

    maildir = Path(platform.env["BUENDNIS_VAR"]) / "mail" / "new"
    wait_for(lambda: datetime.now(UTC) >= due_minute, timeout=lead + 600,
             what="the due minute", interval=0.1)
    cpu_before, wall_before = cpu_seconds(platform), time.monotonic()
    # Done once no participant's reminder is waiting or being sent and every one sent is in the
    # sink: a reminder cancelled or failed ends the wait too (and the run FAILS), not the timeout.
    wait_for(lambda: scalar(url, "SELECT count(*) FROM reminders WHERE recipient = "
                            "'participant' AND status IN ('scheduled', 'sending')") == 0
             and sum(1 for _ in maildir.iterdir()) >= scalar(
                 url, "SELECT count(*) FROM reminders WHERE recipient = 'participant' "
                 "AND status = 'sent'"),
             timeout=(due_minute - datetime.now(UTC)).total_seconds() + 1800,
             what="every reminder sent", interval=1)
    used = cpu_seconds(platform) - cpu_before
    wall = time.monotonic() - wall_before
    time.sleep(3)  # anything sent twice would arrive now

    due = {key: utc(at) for key, at in rows(
        url, "SELECT idempotency_key, due_at FROM reminders WHERE recipient = 'participant'")}
    keys: Counter[str] = Counter()
    delays = []
    delivered_at = []
    for path in maildir.iterdir():
        with path.open("rb") as file:
            headers = email.message_from_binary_file(
                file, policy=email.policy.default, _class=email.message.EmailMessage)
        key = headers["Message-ID"].strip().strip("<>").rsplit("@", 1)[0]
        keys[key] += 1
        arrived = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        delivered_at.append(arrived)
        if key in due:
            delays.append((arrived - due[key]).total_seconds())
    statuses = dict(rows(url, "SELECT status, count(*) FROM reminders GROUP BY status"))
    reasons = dict(rows(url, "SELECT coalesce(cancel_reason, last_error), count(*) FROM "
                        "reminders WHERE recipient = 'participant' AND status <> 'sent' "
                        "GROUP BY coalesce(cancel_reason, last_error)"))
    twice = sum(1 for n in keys.values() if n > 1)
    reminder_keys = [k for k in keys if k in due]
    print(f"database: {'PostgreSQL' if platform.postgres else 'SQLite'}; notifications "
          f"workers: {args.workers}, sending threads each: {args.threads}")
    print(f"reminders by status: {statuses}")
    if reasons:
        print(f"participants' reminders not sent, by reason: {reasons}")
    if not delays:
        print(f"e-mails in the SMTP sink: none of {count} reminders\nFAILED")
        nan = float("nan")
        return {"workers": args.workers, "median": nan, "p99": nan, "rate": nan, "floor": nan,
                "ok": False}
    first_due = min(due.values())
    span = (max(delivered_at) - first_due).total_seconds()
    print(f"e-mails in the SMTP sink: {len(reminder_keys)} of {count} reminders, "
          f"sent twice: {twice}")
    print(f"due → delivered: median {statistics.median(delays):.1f} s, "
          f"p99 {percentile(delays, 0.99):.1f} s, max {max(delays):.1f} s")
    print(f"throughput: {len(reminder_keys) / span:.0f} e-mails/s "
          f"({len(reminder_keys)} from the first due time to the last delivery in {span:.1f} s)")
    cores = os.cpu_count() or 1
    print(f"CPU from the due time to the last delivery ({wall:.1f} s, {cores} cores: "
          f"{wall * cores:.1f} CPU s to be had): {sum(used.values()):.1f} s used "
          f"({sum(used.values()) / (wall * cores):.0%}); "
          + ", ".join(f"{name} {value:.1f}" for name, value in used.most_common(8)))
    ok = len(reminder_keys) == count and twice == 0
    print("OK: all delivered, none twice" if ok else "FAILED")
    rate = len(reminder_keys) / span
    # The baseline, now that every reminder is counted: the same e-mail into the same sink.
    payload = sample_payload(next(maildir.iterdir()))
    sends = min(count, 2000)
    single = smtp_floor(platform.ports["smtp"], payload, sends // 4, 1)
    floor = smtp_floor(platform.ports["smtp"], payload, sends, args.threads)
    print(f"baseline, bare smtplib into the same sink ({len(payload)} bytes a message): "
          f"{single:.0f} e-mails/s on one connection, {floor:.0f}/s on {args.threads}; "
          f"the workers: {rate / floor:.2f} × that")
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return {"workers": args.workers, "median": statistics.median(delays),
            "p99": percentile(delays, 0.99), "rate": rate, "floor": floor, "ok": ok}


if __name__ == "__main__":
    raise SystemExit(main())
