"""A local SMS provider sink: accepts messages over HTTP on loopback and records them.

``python -m buendnis_dev.sms`` — port from ``SMS_PORT`` (1026), messages appended as JSON lines
to ``var/sms/messages.jsonl``. The API is the one the notifications service's SMS adapter
speaks: ``POST /messages`` with JSON ``{"to", "text", "reference"}`` and an ``Idempotency-Key``
header → 201 ``{"id", "status": "accepted"}``; the same key again → 200 with the first answer,
and nothing is recorded twice (what real providers' idempotency keys promise).
``GET /messages`` lists what was recorded. Development and tests only.

The participant's side of two-way SMS: ``python -m buendnis_dev.sms reply --from NUMBER --body
TEXT`` posts a reply to the gateway's ``/webhooks/sms/inbound`` as the provider would, signed
as Twilio signs (``X-Twilio-Signature`` with ``SMS_WEBHOOK_SECRET`` over ``SMS_WEBHOOK_URL`` and
the form fields), and records the acknowledgement the platform answers (TwiML) as a message to
that number. ``POST /replies`` with JSON ``{"from", "body"}`` does the same over HTTP.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.etree import ElementTree

import requests

from buendnis_dev import wait_for_stop

# The development default of the platform's SMS_WEBHOOK_SECRET.
DEMO_WEBHOOK_SECRET = "demo-sms-webhook-secret"


def webhook_url() -> str:
    gateway = os.environ.get("GATEWAY_URL") or (
        f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8000')}")
    return os.environ.get("SMS_WEBHOOK_URL") or f"{gateway.rstrip('/')}/webhooks/sms/inbound"


def twilio_signature(secret: str, url: str, fields: dict[str, str]) -> str:
    """Twilio's scheme: base64(HMAC-SHA1(secret, url + name1 + value1 + … by name))."""
    payload = url + "".join(f"{name}{fields[name]}" for name in sorted(fields))
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def send_reply(*, sender: str, body: str, to: str = "+4915700000000",
               url: str | None = None, secret: str | None = None,
               sid: str | None = None, timeout: float = 10.0) -> tuple[int, str | None]:
    """Post a participant's reply to the platform as the provider does; returns the status
    and the acknowledgement the platform answered (``None`` if it answered none)."""
    url = url or webhook_url()
    secret = secret if secret is not None else (
        os.environ.get("SMS_WEBHOOK_SECRET") or DEMO_WEBHOOK_SECRET)
    fields = {"From": sender, "To": to, "Body": body,
              "MessageSid": sid or "SM" + uuid.uuid4().hex}
    response = requests.post(url, data=fields, timeout=timeout, headers={
        "X-Twilio-Signature": twilio_signature(secret, url, fields)})
    if response.status_code != 200:
        return response.status_code, None
    try:
        message = ElementTree.fromstring(response.content).find("Message")
    except ElementTree.ParseError:
        return response.status_code, None
    return response.status_code, message.text if message is not None else None


class SmsSink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], path: Path) -> None:
        super().__init__(address, _Handler)
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.by_key: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.by_key[record["key"]] = record

    def messages(self) -> list[dict]:
        with self.lock:
            return sorted(self.by_key.values(), key=lambda record: record["received_at"])

    def accept(self, key: str, to: str, text: str) -> tuple[int, dict]:
        with self.lock:
            known = self.by_key.get(key)
            if known is not None:
                return 200, known
            record = {"id": str(uuid.uuid4()), "key": key, "to": to, "text": text,
                      "received_at": datetime.now(UTC).isoformat()}
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.by_key[key] = record
            return 201, record


class _Handler(BaseHTTPRequestHandler):
    server: SmsSink

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Writes nothing: a request line could carry a phone number, and logs must not."""

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reply(self) -> None:
        """``POST /replies`` ``{"from", "body"}``: the participant answers; the platform's
        acknowledgement is recorded as a message to them."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            sender, text = str(body["from"]), str(body["body"])
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "JSON with from and body expected"})
            return
        try:
            status, acknowledgement = send_reply(sender=sender, body=text)
        except requests.RequestException:
            self._answer(502, {"error": "the platform did not answer"})
            return
        if acknowledgement:
            self.server.accept(str(uuid.uuid4()), sender, acknowledgement)
        self._answer(200, {"status": status, "acknowledgement": acknowledgement})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") != "/messages":
            self._answer(404, {"error": "not found"})
            return
        self._answer(200, self.server.messages())

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") == "/replies":
            self._reply()
            return
        if self.path.rstrip("/") != "/messages":
            self._answer(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            to, text = str(body["to"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "JSON with to and text expected"})
            return
        key = self.headers.get("Idempotency-Key") or body.get("reference") or str(uuid.uuid4())
        status, record = self.server.accept(str(key), to, text)
        self._answer(status, {"id": record["id"], "status": "accepted"})


def start(port: int, path: Path, host: str = "127.0.0.1") -> SmsSink:
    """A sink serving in a background thread; ``shutdown()`` stops it."""
    sink = SmsSink((host, port), path)
    threading.Thread(target=sink.serve_forever, name="sms-sink", daemon=True).start()
    return sink


def reply_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m buendnis_dev.sms reply",
        description="Answer a reminder as the participant: post a signed SMS reply to the "
                    "platform (the gateway's /webhooks/sms/inbound).")
    parser.add_argument("--from", dest="sender", required=True,
                        help="the participant's number, as the reminder went to it")
    parser.add_argument("--body", required=True, help="1 / JA / YES, 2 / NEIN / NO, STOP …")
    parser.add_argument("--to", default="+4915700000000", help="the platform's number")
    parser.add_argument("--url", default=None, help="default: SMS_WEBHOOK_URL or the gateway")
    args = parser.parse_args(argv)
    try:
        status, acknowledgement = send_reply(sender=args.sender, body=args.body, to=args.to,
                                             url=args.url)
    except requests.RequestException:
        print(f"the platform does not answer at {args.url or webhook_url()} (is make run "
              "running?)", file=sys.stderr)
        return 1
    if status != 200:
        print(f"the platform answered {status}", file=sys.stderr)
        return 1
    if acknowledgement:
        path = Path(os.environ.get("BUENDNIS_VAR", "var")) / "sms" / "messages.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"id": str(uuid.uuid4()), "key": str(uuid.uuid4()),
                  "to": re.sub(r"\s", "", args.sender), "text": acknowledgement,
                  "received_at": datetime.now(UTC).isoformat()}
        with path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"acknowledgement: {acknowledgement}")
    else:
        print("no acknowledgement (a number the platform never wrote to, or a repeat)")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["reply"]:
        return reply_command(sys.argv[2:])
    port = int(os.environ.get("SMS_PORT", "1026"))
    path = Path(os.environ.get("BUENDNIS_VAR", "var")) / "sms" / "messages.jsonl"
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sink = start(port, path)
    print(f"SMS sink on http://127.0.0.1:{port}/messages, messages kept in {path}", flush=True)
    try:
        wait_for_stop()
    finally:
        sink.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
