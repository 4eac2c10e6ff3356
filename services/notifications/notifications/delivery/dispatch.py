"""The periodic dispatcher: claims what is due, sends it on a few threads, settles the outcome.

One run (a beat-triggered task) first settles the rows of dead workers, then claims and sends
batch after batch until nothing is due or its time budget is spent. Several runs on several
workers share the work through the claims (``delivery.claims``).
"""
from __future__ import annotations

import logging
import os
import random
import socket
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
from notifications.delivery.claims import Claims
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
    return f"{socket.gethostname()}:{os.getpid()}"


class Dispatcher:
    def __init__(self, *, runtime: ServiceRuntime, config: NotificationsConfig,
                 worker: str | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.db = runtime.db
        worker = worker or worker_name()
        margin = timedelta(seconds=2 * max(config.smtp.timeout_seconds,
                                           config.sms.timeout_seconds))
        self.reminders = Claims(db=self.db, model=Reminder, lease=config.lease, margin=margin,
                                worker=worker)
        self.copies = Claims(db=self.db, model=EmailCopy, lease=config.lease, margin=margin,
                             worker=worker)
        self._senders = Senders()
        self._opened: list[Any] = []
        self._opened_lock = threading.Lock()

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
        sms_resend = self.config.sms.idempotent
        requeued, unconfirmed = self.reminders.recover(
            now=now, resend_after_hand_over=lambda row: sms_resend and row.channel == "sms")
        copies = self.copies.recover(now=now, resend_after_hand_over=lambda row: False)
        return requeued + copies[0], unconfirmed + copies[1]

    def run(self, *, budget_seconds: float | None = None, batch: int | None = None) -> Stats:
        from notifications.inbox import sending as copies
        from notifications.reminder import sending as reminders
        from notifications.reminder.models import CASE_WORKER

        stats = Stats()
        stats.recovered, stats.unconfirmed = self.recover(utcnow())
        if stats.recovered or stats.unconfirmed:
            log.warning("dispatch: %d row(s) of stopped workers scheduled again, %d marked "
                        "sent unconfirmed", stats.recovered, stats.unconfirmed)
        deadline = time.monotonic() + (budget_seconds or self.config.dispatch_budget_seconds)
        size = batch or self.config.send_concurrency * 8
        try:
            with ThreadPoolExecutor(self.config.send_concurrency,
                                    thread_name_prefix="dispatch") as pool:
                while time.monotonic() < deadline:
                    claimed = reminders.load(self, self.reminders.claim(now=utcnow(),
                                                                        limit=size))
                    work: list[tuple[Callable, Any]] = []
                    for outcome in reminders.remind_case_workers(
                            self, [c for c in claimed if c.reminder.recipient == CASE_WORKER]):
                        stats.count(outcome)
                    work += [(reminders.notify_participant, c) for c in claimed
                             if c.reminder.recipient != CASE_WORKER]
                    mail_copies = []
                    if len(claimed) < size:
                        mail_copies = copies.load(self, self.copies.claim(
                            now=utcnow(), limit=size - len(claimed)))
                        work += [(copies.send_copy, c) for c in mail_copies]
                    if not claimed and not mail_copies:
                        break
                    stats.claimed += len(claimed) + len(mail_copies)
                    for outcome in pool.map(lambda item: self._send(*item), work):
                        stats.count(outcome)
        finally:
            self.close()
        if stats.claimed:
            log.info("dispatch: %d claimed, outcomes %s", stats.claimed, stats.outcomes)
        return stats

    def _send(self, send: Callable, item: Any) -> str:
        try:
            return send(self, item)
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            log.exception("dispatch: sending %s failed unexpectedly", item.claim.id)
            # Left in ``sending``: the lease runs out and recovery settles it.
            return "error"
