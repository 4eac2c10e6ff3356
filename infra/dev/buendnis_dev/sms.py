"""A local SMS provider sink: accepts messages over HTTP on loopback and records them.

``python -m buendnis_dev.sms`` — port from ``SMS_PORT`` (1026), messages appended as JSON lines
to ``var/sms/messages.jsonl``. The API is the one the notifications service's SMS adapter
speaks: ``POST /messages`` with JSON ``{"to", "text", "reference"}`` and an ``Idempotency-Key``
header → 201 ``{"id", "status": "accepted"}``; the same key again → 200 with the first answer,
and nothing is recorded twice (what real providers' idempotency keys promise).
``GET /messages`` lists what was recorded. Development and tests only.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from buendnis_dev import wait_for_stop


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

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") != "/messages":
            self._answer(404, {"error": "not found"})
            return
        self._answer(200, self.server.messages())

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
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


def main() -> int:
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
