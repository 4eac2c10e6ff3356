"""`make run`'s process manager: supervisor, with its configuration made from the `Procfile`.

A local run should fail the way production does: when one process dies, it is started again
(as a container runtime or Kubernetes would) instead of everything stopping, as honcho did.
supervisor (supervisord) does that, with a back-off for a process that keeps dying at once,
and logs each exit and restart; Ctrl-C or SIGTERM still stops every process.

    python -m buendnis_dev.supervise [Procfile]      # write the configuration, run supervisord
    python -m buendnis_dev.supervise child NAME      # one Procfile line (what supervisord runs)

The `Procfile` stays the one list of processes. Each runs under `child`, which runs the line
with `/bin/sh -c` (its `${VAR:-default}` expansions and `exec`, as honcho did) and writes every
line of its output with the process's name in front, so that the one output of `make run`
says who said what. The child follows its parent: if `child` itself is killed, its process
gets SIGTERM (Linux), so that a restart never finds the port still taken by an orphan.

While it runs, `supervisorctl -c var/supervisord.conf status` (or `restart buendnis:NAME`)
talks to it through a socket in `var/`.
"""
from __future__ import annotations

import ctypes
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
# A process that dies within this many seconds of its start did not start; supervisor then
# waits 1, 2, 3 … s before each of up to this many further tries (its back-off).
START_SECONDS = 3
START_RETRIES = 30
# Time for a process to stop on SIGTERM before it is killed (gunicorn and Celery finish
# what they are doing; the longest reminder hand-over waits for one SMTP answer).
STOP_SECONDS = 25
WIDTH = 22


def read_procfile(path: Path) -> dict[str, str]:
    processes: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = LINE.match(raw)
        if not match:
            raise SystemExit(f"{path}: not a Procfile line: {raw!r}")
        processes[match.group(1)] = match.group(2)
    return processes


def configuration(processes: dict[str, str], *, var: Path, procfile: Path) -> str:
    """supervisord's configuration. No command line of the Procfile goes into it (supervisor
    would read their ``%`` as its own expansions): each program is ``child NAME``. All programs
    form one group, which supervisor stops all at once (group after group would add up the
    stop times)."""
    python = sys.executable
    password = secrets.token_hex(16)  # supervisorctl's, for this run; the file is 0600
    lines = [
        "[supervisord]",
        "nodaemon = true",
        # supervisor's own messages (spawned, exited, gave up) go to make run's output, once
        # (silent: not echoed a second time as a foreground process would).
        "logfile = /dev/stdout",
        "logfile_maxbytes = 0",
        "silent = true",
        "loglevel = info",
        f"pidfile = {var / 'supervisord.pid'}",
        f"user = {_user()}",
        "",
        "[unix_http_server]",
        f"file = {var / 'supervisor.sock'}",
        "chmod = 0700",
        "username = buendnis",
        f"password = {password}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl = unix://{var / 'supervisor.sock'}",
        "username = buendnis",
        f"password = {password}",
        "",
        "[group:buendnis]",
        f"programs = {','.join(processes)}",
        "",
    ]
    for name in processes:
        lines += [
            f"[program:{name}]",
            f"command = {python} -m buendnis_dev.supervise child {name} {procfile}",
            f"directory = {procfile.parent}",
            "autostart = true",
            "autorestart = true",
            f"startsecs = {START_SECONDS}",
            f"startretries = {START_RETRIES}",
            "stopsignal = TERM",
            f"stopwaitsecs = {STOP_SECONDS}",
            # The TERM goes to `child`, which hands it on to its process group; a kill after
            # stopwaitsecs takes the whole group.
            "stopasgroup = false",
            "killasgroup = true",
            "redirect_stderr = true",
            # Each line as it comes, as honcho had it.
            "environment = PYTHONUNBUFFERED=\"1\"",
            "stdout_logfile = /dev/stdout",
            "stdout_logfile_maxbytes = 0",
            "",
        ]
    return "\n".join(lines)


def supervise(procfile: Path) -> int:
    var = Path(os.environ.get("BUENDNIS_VAR", "var")).resolve()
    var.mkdir(parents=True, exist_ok=True)
    config = var / "supervisord.conf"
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text(configuration(read_procfile(procfile), var=var, procfile=procfile))
    supervisord = Path(sys.executable).with_name("supervisord")
    os.execv(str(supervisord), [str(supervisord), "--nodaemon", "--configuration", str(config)])
    return 1  # not reached


def _user() -> str:
    """The user supervisord runs as: the current one (said aloud, so that it does not warn)."""
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _die_with_parent() -> None:
    """In the child between fork and exec: SIGTERM when `child` dies (Linux's prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an orphan then lives on until it is stopped


def child(name: str, procfile: Path) -> int:
    command = read_procfile(procfile)[name]
    prefix = f"{name:<{WIDTH}}| ".encode()
    env = dict(os.environ)
    # gunicorn's control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl): the
    # several gunicorns of one run would take it from one another, and it slows their stop.
    # Requests in flight get 20 s to finish, within the 25 s before supervisor kills.
    env.setdefault("GUNICORN_CMD_ARGS",
                   f"--no-control-socket --graceful-timeout {STOP_SECONDS - 5}")
    process = subprocess.Popen(["/bin/sh", "-c", command], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                               preexec_fn=_die_with_parent)  # noqa: PLW1509 - only prctl

    def hand_on(signum, _frame) -> None:
        """To the whole process group, as a container runtime signals a container: the process
        and the workers it forked (gunicorn's, Celery's pool) each wind down themselves."""
        previous = signal.signal(signum, signal.SIG_IGN)  # not to ourselves once more
        try:
            os.killpg(os.getpgrp(), signum)
        finally:
            signal.signal(signum, previous)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, hand_on)
    out = sys.stdout.buffer
    for line in iter(process.stdout.readline, b""):
        out.write(time.strftime("%H:%M:%S ").encode() + prefix + line)
        out.flush()
    code = process.wait()
    if code < 0:  # died of a signal: say so as a shell would, so that supervisor logs it
        return 128 - code
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["child"] and len(args) in (2, 3):
        procfile = Path(args[2]) if len(args) == 3 else REPO / "Procfile"
        return child(args[1], procfile.resolve())
    if len(args) <= 1:
        return supervise(Path(args[0] if args else "Procfile").resolve())
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
