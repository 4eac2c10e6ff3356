"""The periodic dispatcher: claims what is due, sends it on a few threads, settles the outcome.

A batch (``REMINDER_DISPATCH_BATCH`` rows, one claim) needs one request to intake for its
contacts; its e-mails go over one SMTP connection per ``MAILS_PER_CONNECTION`` of them (at most
one per sending thread), its SMS concurrently at the provider's rate
(``SMS_PROVIDER_RATE_PER_SECOND``).

One run (a beat-triggered task) first settles the rows of dead workers, then claims and sends
batch after batch until nothing is due, its time budget is spent or the worker is told to stop;
while one batch is being sent, the next is claimed and prepared (two batches in flight at most).
Several runs on several workers share the work through the claims (``delivery.claims``); while a
run holds claims, a heartbeat thread renews their lease, so that only a dead worker's claims
run out. Told to stop (SIGTERM, Celery's warm shutdown), a run gives back every claim it has
not handed over yet and waits only for the messages already handed over.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from buendnis_common.db import utcnow
from buendnis_common.service import ServiceRuntime
from notifications.config import NotificationsConfig
from notifications.delivery.channels import SmsSender, SmtpSender
from notifications.delivery.claims import Claims, ProcessIdentity
from notifications.inbox.models import EmailCopy
from notifications.reminder.models import Reminder

log = logging.getLogger(__name__)


@dataclass
class Stats:
    recovered: int = 0
    unconfirmed: int = 0
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Senders(threading.local):
    """Each sending thread's own SMTP connection and HTTP session."""

    smtp: SmtpSender | None = None
    sms: SmsSender | None = None


def worker_name() -> str:
    """This process start's identity (``claimed_by``)."""
    return str(ProcessIdentity.current())


# Set when the worker is told to stop (``reminder.tasks``): runs give their claims back.
STOPPING = threading.Event()

# Up to this many e-mails go over one SMTP connection; a bigger batch is spread over up to
# ``REMINDER_SEND_CONCURRENCY`` connections, one per sending thread (a slow server must not
# hold a whole batch up behind one connection).
MAILS_PER_CONNECTION = 5


class Pace:
    """At most ``rate`` starts a second across this worker's threads (an SMS provider's limit):
    each caller takes the next free slot and sleeps until it. 0 or less: no limit."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class Dispatcher:
    def __init__(self, *, runtime: ServiceRuntime, config: NotificationsConfig,
                 worker: str | None = None, stopping: threading.Event | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.db = runtime.db
        self.stopping = stopping or STOPPING
        worker = worker or worker_name()
        # The heartbeat renews every third of the lease; a hand-over demands at least that much
        # lease left, so that a claim cannot run out under a live worker before it is renewed.
        self.heartbeat_seconds = config.lease.total_seconds() / 3
        margin = timedelta(seconds=self.heartbeat_seconds)
        self.reminders = Claims(db=self.db, model=Reminder, lease=config.lease, margin=margin,
                                worker=worker)
        self.copies = Claims(db=self.db, model=EmailCopy, lease=config.lease, margin=margin,
                             worker=worker)
        self._senders = Senders()
        self.sms_pace = Pace(config.sms.rate_per_second)
        self._opened: list[Any] = []
        self._opened_lock = threading.Lock()
        self._held: dict[Claims, set[str]] = {self.reminders: set(), self.copies: set()}
        self._held_lock = threading.Lock()

    # -- the senders of the current thread -------------------------------------------------------
    def smtp(self) -> SmtpSender:
        if self._senders.smtp is None:
            self._senders.smtp = SmtpSender(self.config.smtp)
            with self._opened_lock:
                self._opened.append(self._senders.smtp)
        return self._senders.smtp

    def sms(self) -> SmsSender:
        if self._senders.sms is None:
            self._senders.sms = SmsSender(self.config.sms)
            with self._opened_lock:
                self._opened.append(self._senders.sms)
        return self._senders.sms

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for sender in opened:
            sender.close()

    # -- retries ----------------------------------------------------------------------------------
    def backoff(self, attempts: int) -> timedelta:
        """Exponential, capped, with a little jitter so that retries do not come in waves."""
        base = self.config.retry_backoff.total_seconds() * (2 ** max(0, attempts - 1))
        capped = min(base, self.config.retry_backoff_max.total_seconds())
        return timedelta(seconds=capped * random.uniform(0.9, 1.1))

    # -- one run ----------------------------------------------------------------------------------
    def recover(self, now: datetime) -> tuple[int, int]:
        from notifications.reminder import sending as reminders

        sms_resend = self.config.sms.idempotent
        requeued, unconfirmed = self.reminders.recover(
            now=now, resend_after_hand_over=lambda row: sms_resend and row.channel == "sms",
            on_unconfirmed=lambda session, row: reminders.report_unconfirmed(
                session, row, now=now))
        copies = self.copies.recover(now=now, resend_after_hand_over=lambda row: False)
        return requeued + copies[0], unconfirmed + copies[1]

    # -- the heartbeat ----------------------------------------------------------------------------
    def _hold(self, claims: Claims, token: str | None) -> None:
        if token:
            with self._held_lock:
                self._held[claims].add(token)

    def _let_go(self, tokens: list[str | None]) -> None:
        with self._held_lock:
            for held in self._held.values():
                held.difference_update(tokens)

    def _collect(self, jobs: list, tokens: list[str | None], stats: Stats) -> None:
        """Wait for a batch's sending jobs, count their outcomes, stop renewing its claims."""
        from notifications import metrics as measure

        for items, job in jobs:
            outcomes = job.result()
            outcomes = outcomes if isinstance(outcomes, list) else [outcomes]
            for outcome in outcomes:
                stats.count(outcome)
            measure.settled([getattr(item, "item", item) for item in items], outcomes)
        self._let_go(tokens)

    def renew(self) -> None:
        with self._held_lock:
            held = {claims: list(tokens) for claims, tokens in self._held.items()}
        for claims, tokens in held.items():
            claims.renew(tokens, now=utcnow())

    def _heartbeat(self, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_seconds):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - try again at the next beat; the lease has room
                log.warning("dispatch: could not renew the claims' lease", exc_info=True)

    def run(self, *, budget_seconds: float | None = None, batch: int | None = None,
            on_full_batch: Callable[[], None] | None = None) -> Stats:
        """Claim, prepare and send batch after batch; ``on_full_batch`` is called once, when a
        claim first comes back full (more is due than one batch: other workers may help)."""
        from notifications import metrics as measure
        from notifications.inbox import sending as copies
        from notifications.reminder import sending as reminders
        from notifications.reminder.models import CASE_WORKER

        stats = Stats()
        stats.recovered, stats.unconfirmed = self.recover(utcnow())
        if stats.recovered or stats.unconfirmed:
            log.warning("dispatch: %d row(s) of stopped workers scheduled again, %d marked "
                        "sent unconfirmed", stats.recovered, stats.unconfirmed)
        deadline = time.monotonic() + (budget_seconds or self.config.dispatch_budget_seconds)
        size = batch or self.config.dispatch_batch
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(done,), daemon=True,
                                     name="dispatch-heartbeat")
        heartbeat.start()
        try:
            with ThreadPoolExecutor(self.config.send_concurrency,
                                    thread_name_prefix="dispatch") as pool:
                # While the sending threads send one batch, this thread claims and prepares the
                # next (contacts, STOP, rendering): the senders do not wait for it.
                sending: tuple[list, list[str | None]] | None = None
                while time.monotonic() < deadline and not self.stopping.is_set():
                    claims = self.reminders.claim(now=utcnow(), limit=size)
                    if on_full_batch is not None and len(claims) == size:
                        on_full_batch()
                        on_full_batch = None
                    tokens = [claims[0].token if claims else None]
                    self._hold(self.reminders, tokens[0])
                    claimed = reminders.load(self, claims)
                    to_case_workers = [c for c in claimed if c.reminder.recipient == CASE_WORKER]
                    outcomes = reminders.remind_case_workers(self, to_case_workers)
                    for outcome in outcomes:
                        stats.count(outcome)
                    measure.settled(to_case_workers, outcomes)
                    # Contacts for the whole batch in one request, STOP in one query; what is
                    # not to be sent now is settled there.
                    settled, ready = reminders.prepare_participants(
                        self, [c for c in claimed if c.reminder.recipient != CASE_WORKER])
                    for _item, outcome in settled:
                        stats.count(outcome)
                    measure.settled([item for item, _outcome in settled],
                                    [outcome for _item, outcome in settled])
                    mail_copies = []
                    if len(claimed) < size:
                        copy_claims = self.copies.claim(now=utcnow(), limit=size - len(claimed))
                        tokens.append(copy_claims[0].token if copy_claims else None)
                        self._hold(self.copies, tokens[-1])
                        mail_copies = copies.load(self, copy_claims)
                    if not claimed and not mail_copies:
                        break
                    stats.claimed += len(claimed) + len(mail_copies)
                    if sending is not None:
                        self._collect(*sending, stats)
                    jobs = [(group, pool.submit(self._send_emails, group))
                            for group in self._connections(
                                [p for p in ready if p.channel == "email"])]
                    jobs += [([prepared], pool.submit(self._send_sms, prepared))
                             for prepared in ready if prepared.channel == "sms"]
                    jobs += [([copy], pool.submit(self._send, self.copies, copies.send_copy,
                                                  copy)) for copy in mail_copies]
                    sending = (jobs, tokens)
                if sending is not None:
                    self._collect(*sending, stats)
        finally:
            done.set()
            self.close()
        if self.stopping.is_set():
            log.info("dispatch: stopping, unsent claims given back")
        if stats.claimed:
            log.info("dispatch: %d claimed, outcomes %s", stats.claimed, stats.outcomes)
        return stats

    def _connections(self, emails: list) -> list[list]:
        """The batch's e-mails split over SMTP connections: one per ``MAILS_PER_CONNECTION``
        messages, at most one per sending thread; each group goes over one connection."""
        if not emails:
            return []
        count = min(self.config.send_concurrency, -(-len(emails) // MAILS_PER_CONNECTION))
        return [emails[index::count] for index in range(count)]

    def _send_emails(self, group: list) -> list[str]:
        from notifications.reminder import sending as reminders

        try:
            return reminders.send_emails(self, group)
        except Exception:  # noqa: BLE001 - left in ``sending``: recovery settles them
            log.exception("dispatch: sending a batch of e-mails failed unexpectedly")
            return ["error"] * len(group)

    def _send_sms(self, prepared) -> str:
        from notifications.reminder import sending as reminders

        if self.stopping.is_set():
            self.reminders.give_back(prepared.claim, now=utcnow())
            return "given_back"
        try:
            return reminders.send_sms(self, prepared, self.sms())
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            log.exception("dispatch: sending %s failed unexpectedly", prepared.claim.id)
            return "error"

    def _send(self, claims: Claims, send: Callable, item: Any) -> str:
        if self.stopping.is_set():
            claims.give_back(item.claim, now=utcnow())
            return "given_back"
        try:
            return send(self, item)
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            log.exception("dispatch: sending %s failed unexpectedly", item.claim.id)
            # Left in ``sending``: no longer renewed, its lease runs out and recovery settles it.
            return "error"

    def may_hand_over(self) -> bool:
        """False once the worker is told to stop: what is not handed over yet is given back."""
        return not self.stopping.is_set()
