"""Helpers for running the whole platform on one machine (``make run``) and in tests."""
from __future__ import annotations

import signal


def wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM, which the process runner sends to stop us."""
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)
