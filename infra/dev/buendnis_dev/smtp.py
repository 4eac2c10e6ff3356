"""A local SMTP sink: accepts every message on loopback and keeps it in a Maildir.

``python -m buendnis_dev.smtp`` — port from ``SMTP_PORT`` (1025), folder ``var/mail``.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

from buendnis_dev import wait_for_stop


def start(port: int, maildir: Path, host: str = "127.0.0.1") -> Controller:
    # mailbox.Maildir creates tmp/new/cur only when the folder itself is missing.
    for folder in ("tmp", "new", "cur"):
        (maildir / folder).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(str(maildir)), hostname=host, port=port)
    controller.start()
    return controller


def main() -> int:
    port = int(os.environ.get("SMTP_PORT", "1025"))
    maildir = Path(os.environ.get("BUENDNIS_VAR", "var")) / "mail"
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    controller = start(port, maildir)
    print(f"SMTP sink on 127.0.0.1:{port}, messages kept in {maildir}/new", flush=True)
    try:
        wait_for_stop()
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
