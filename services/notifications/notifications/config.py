"""Settings of the notifications service beyond what every service reads, from the environment."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta

from buendnis_common.answers import link_key
from buendnis_common.settings import (
    SettingsError,
    env_bool,
    env_durations,
    env_float,
    env_int,
    env_secret,
    env_str,
)


@dataclass(frozen=True)
class QuietHours:
    """No SMS between ``start`` and ``end`` (Europe/Berlin local time); the window may span
    midnight (21:00–08:00). ``None`` means no quiet hours."""

    start: time
    end: time

    @classmethod
    def parse(cls, name: str, raw: str) -> QuietHours | None:
        if raw.strip().lower() in {"", "off", "none"}:
            return None
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", raw)
        if not match:
            raise SettingsError(f"{name} must look like 21:00-08:00 (or off), got {raw!r}")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        try:
            return cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise SettingsError(f"{name}: {raw!r} is not a time range") from None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    timeout_seconds: float
    sender: str

    @classmethod
    def from_env(cls) -> SmtpSettings:
        return cls(
            host=env_str("SMTP_HOST", "127.0.0.1"),
            port=env_int("SMTP_PORT", 1025),
            username=env_str("SMTP_USERNAME", "") or None,
            password=env_str("SMTP_PASSWORD", "") or None,
            starttls=env_bool("SMTP_STARTTLS", False),
            timeout_seconds=env_float("SMTP_TIMEOUT_SECONDS", 20.0),
            sender=env_str("SMTP_FROM", "Bündnis <termine@buendnis.example>"),
        )


@dataclass(frozen=True)
class SmsSettings:
    url: str
    token: str | None
    timeout_seconds: float
    # The provider honours the idempotency key (returns the first answer for a repeated key
    # instead of sending again): a message whose answer was lost may then be sent again safely.
    idempotent: bool
    # SMS_PROVIDER_RATE_PER_SECOND: at most this many requests a second from one worker.
    rate_per_second: float = 10.0

    @classmethod
    def from_env(cls) -> SmsSettings:
        port = env_int("SMS_PORT", 1026)
        return cls(
            url=env_str("SMS_PROVIDER_URL", f"http://127.0.0.1:{port}/messages"),
            token=env_str("SMS_PROVIDER_TOKEN", "") or None,
            timeout_seconds=env_float("SMS_TIMEOUT_SECONDS", 10.0),
            idempotent=env_bool("SMS_PROVIDER_IDEMPOTENT", True),
            # The provider's limit: SMS started per second by one worker (0: no limit).
            rate_per_second=env_float("SMS_PROVIDER_RATE_PER_SECOND", 10.0),
        )


@dataclass(frozen=True)
class AnswerSettings:
    """Participants answer reminders: by SMS reply (the provider's signed webhook) and by the
    link in an e-mail reminder."""

    # The provider signs each webhook with it (Twilio: the account's auth token).
    webhook_secret: str
    # The URL the provider posts to and signs, as it sees it: the gateway's public address.
    webhook_url: str
    # Where participants open the link: the web front end's public address.
    web_url: str
    # Signs the link (shared with the referrals service, which checks it).
    link_key: str

    @classmethod
    def from_env(cls) -> AnswerSettings:
        gateway = env_str("GATEWAY_URL", f"http://127.0.0.1:{env_int('GATEWAY_PORT', 8000)}")
        return cls(
            webhook_secret=env_secret("SMS_WEBHOOK_SECRET", "demo-sms-webhook-secret"),
            webhook_url=env_str("SMS_WEBHOOK_URL",
                                f"{gateway.rstrip('/')}/webhooks/sms/inbound"),
            web_url=env_str("WEB_URL",
                            f"http://127.0.0.1:{env_int('WEB_PORT', 8090)}").rstrip("/"),
            link_key=link_key(),
        )


@dataclass(frozen=True)
class NotificationsConfig:
    offsets: tuple[timedelta, ...]
    quiet_hours: QuietHours | None
    # How far before the start of the quiet hours a reminder moved out of them goes out.
    quiet_hours_lead: timedelta
    max_attempts: int
    retry_backoff: timedelta
    retry_backoff_max: timedelta
    dispatch_interval_seconds: float
    dispatch_budget_seconds: float
    send_concurrency: int
    lease: timedelta
    smtp: SmtpSettings
    sms: SmsSettings
    # Messages to the participant about one appointment at least this far apart (moves),
    # CHANGE_NOTICE_INTERVAL like 30m.
    change_notice_interval: timedelta = timedelta(minutes=30)
    answers: AnswerSettings | None = None
    # Rows one dispatcher claims at once: one contact request to intake, one claim transaction.
    dispatch_batch: int = 200

    @classmethod
    def from_env(cls) -> NotificationsConfig:
        offsets = tuple(sorted(set(env_durations("REMINDER_OFFSETS", "24h,2h")), reverse=True))
        if any(offset.total_seconds() <= 0 for offset in offsets):
            raise SettingsError("REMINDER_OFFSETS must be positive durations")
        smtp = SmtpSettings.from_env()
        sms = SmsSettings.from_env()
        # A claim's lease: a live worker renews it every third of it (the heartbeat), a dead
        # worker's claims come back once it has run out (at once, on the same machine).
        lease = timedelta(seconds=env_float("REMINDER_LEASE_SECONDS", 15.0))
        if lease.total_seconds() < 3:
            raise SettingsError("REMINDER_LEASE_SECONDS must be at least 3")
        return cls(
            offsets=offsets,
            quiet_hours=QuietHours.parse(
                "SMS_QUIET_HOURS", env_str("SMS_QUIET_HOURS", "21:00-08:00")
            ),
            quiet_hours_lead=timedelta(minutes=env_float("SMS_QUIET_HOURS_LEAD_MINUTES", 15)),
            max_attempts=max(1, env_int("REMINDER_MAX_ATTEMPTS", 5)),
            retry_backoff=timedelta(seconds=env_float("REMINDER_RETRY_BACKOFF_SECONDS", 60)),
            retry_backoff_max=timedelta(
                seconds=env_float("REMINDER_RETRY_BACKOFF_MAX_SECONDS", 1800)
            ),
            dispatch_interval_seconds=env_float("REMINDER_DISPATCH_INTERVAL_SECONDS", 5.0),
            dispatch_budget_seconds=env_float("REMINDER_DISPATCH_BUDGET_SECONDS", 20.0),
            send_concurrency=max(1, env_int("REMINDER_SEND_CONCURRENCY", 8)),
            lease=lease,
            smtp=smtp,
            sms=sms,
            change_notice_interval=env_durations("CHANGE_NOTICE_INTERVAL", "30m")[0],
            answers=AnswerSettings.from_env(),
            dispatch_batch=max(1, env_int("REMINDER_DISPATCH_BATCH", 200)),
        )
