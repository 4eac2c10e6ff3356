"""The channels to the outside: e-mail over SMTP and SMS through a provider's HTTP API.

Both take a ``hand_over`` callback that they call at the *point of no return* — for SMTP after
the server has said 354 to DATA and before the message and its final ``.`` leave us; for SMS
before the request. The callback records that moment in the database (a compare-and-set on the
claim) and may refuse, in which case nothing is handed over. What an error means for the
message depends on which side of that point it happened:

- ``TemporaryFailure``: the message was not accepted (a 4xx, no connection); try again later.
- ``PermanentFailure``: refused for good (5xx, a 4xx from the SMS provider); do not try again.
- ``Unconfirmed``: handed over, but no answer came back (the connection broke, a time-out): the
  receiver may or may not have it.
- ``HandOverRefused``: the claim was lost before the point of no return; nothing left us.
"""
from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable
from email.message import Message
from email.policy import compat32
from email.utils import parseaddr

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from notifications.config import SmsSettings, SmtpSettings


class DeliveryError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code[:120]


class TemporaryFailure(DeliveryError):
    """The server or provider may accept it later: retried with backoff."""


class PermanentFailure(DeliveryError):
    """It will never be accepted (bad address, refused): the reminder fails at once."""


class Unconfirmed(DeliveryError):
    """Handed over, but the answer was lost: counted as sent, never sent again."""


class HandOverRefused(DeliveryError):
    """The claim was lost before the point of no return: another worker owns the row."""


HandOver = Callable[[], bool]

_SMTP_LINES = compat32.clone(linesep="\r\n")


def _smtp_failure(stage: str, code: int) -> DeliveryError:
    if 400 <= code < 500:
        return TemporaryFailure(f"smtp_{stage}_{code}")
    return PermanentFailure(f"smtp_{stage}_{code}")


class SmtpSender:
    """One SMTP connection, reused for message after message (one sender per thread)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    @property
    def sender_address(self) -> str:
        return parseaddr(self.settings.sender)[1]

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        connection = smtplib.SMTP(settings.host, settings.port,
                                  timeout=settings.timeout_seconds)
        connection.ehlo()
        if settings.starttls:
            connection.starttls(context=ssl.create_default_context())
            connection.ehlo()
        if settings.username:
            connection.login(settings.username, settings.password or "")
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def _abandon(self) -> None:
        """Drop the connection without a word: a server discards a DATA that never ended."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _envelope(self, recipient: str) -> smtplib.SMTP:
        """MAIL, RCPT and DATA up to the server's 354, on a working connection."""
        for fresh in (False, True):
            if self._connection is None or fresh:
                self._abandon()
                try:
                    self._connection = self._connect()
                except smtplib.SMTPResponseException as exc:
                    self._abandon()
                    raise _smtp_failure("connect", exc.smtp_code) from None
                except (smtplib.SMTPException, OSError) as exc:
                    self._abandon()
                    raise TemporaryFailure(f"smtp_connect_{type(exc).__name__}") from None
                fresh = True
            connection = self._connection
            try:
                code, _ = connection.mail(self.sender_address)
                if code != 250:
                    connection.rset()
                    raise _smtp_failure("mail", code)
                code, _ = connection.rcpt(recipient)
                if code not in (250, 251):
                    connection.rset()
                    raise _smtp_failure("rcpt", code)
                code, _ = connection.docmd("DATA")
                if code != 354:
                    connection.rset()
                    raise _smtp_failure("data", code)
                return connection
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                # A reused connection the server had closed meanwhile: once more, afresh.
                self._abandon()
                if fresh:
                    raise TemporaryFailure(f"smtp_envelope_{type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def send(self, message: Message | bytes, *, recipient: str, hand_over: HandOver) -> None:
        """``message``: built, or its bytes with CRLF line ends (``mail.wire``)."""
        connection = self._envelope(recipient)
        if not hand_over():
            self._abandon()
            raise HandOverRefused("claim_lost")
        payload = message if isinstance(message, bytes) else message.as_bytes(
            policy=_SMTP_LINES)
        payload = re.sub(rb"(?m)^\.", b"..", payload)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        try:
            connection.send(payload + b".\r\n")
            code, _ = connection.getreply()
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._abandon()
            raise Unconfirmed(f"smtp_answer_lost_{type(exc).__name__}") from None
        if code != 250:
            raise _smtp_failure("message", code)


class SmsSender:
    """An SMS provider's HTTP API: ``POST {url}`` with JSON ``{"to", "text", "reference"}`` and
    the header ``Idempotency-Key``; 2xx means accepted (a repeated key answers like the first
    time without sending again), 429 and 5xx are temporary, any other 4xx permanent."""

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    def send(self, *, to: str, text: str, key: str, hand_over: HandOver) -> None:
        if not hand_over():
            raise HandOverRefused("claim_lost")
        headers = {"Idempotency-Key": key}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        try:
            response = self.http.post(
                self.settings.url, json={"to": to, "text": text, "reference": key},
                headers=headers, timeout=self.settings.timeout_seconds,
            )
        except requests.RequestException as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            if isinstance(exc, requests.ConnectTimeout) or isinstance(
                reason, NewConnectionError | ConnectTimeoutError
            ):
                raise TemporaryFailure(f"sms_connect_{type(exc).__name__}") from None
            raise Unconfirmed(f"sms_answer_lost_{type(exc).__name__}") from None
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 429 or response.status_code >= 500:
            raise TemporaryFailure(f"sms_{response.status_code}")
        raise PermanentFailure(f"sms_{response.status_code}")


def mask_email(address: str) -> str:
    """``amira@example.org`` → ``a***@example.org``."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(number: str) -> str:
    """``+4917612345678`` → ``+49*********678``."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 6) + number[-3:]
