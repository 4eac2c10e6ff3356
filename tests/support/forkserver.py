"""A fork server: many short platform processes without paying each interpreter's imports.

Why it exists: ``tests/infra/test_production_switch.py`` starts some thirty-five processes
(gunicorn, a Celery worker or beat, a migration, the local identity provider) that mostly exit
within milliseconds of reading their settings. As fresh interpreters, each spent 2-3 CPU seconds
importing Flask, SQLAlchemy, Celery, Alembic and gunicorn first: the file took 100 s alone and
about 180 s in the parallel ``make test``. The server is one interpreter, started per test
module, that imports those third-party libraries once and forks a child for every command.

What a child keeps of "a real process runs the real entry point":

- a process of its own, in a session and process group of its own (``start_new_session``), with
  its exit status (negative: the signal that ended it) reported as ``subprocess`` does;
- the command's own entry point: a console script of the venv (``bin/gunicorn``, ``bin/celery``)
  runs from its file as ``__main__``, the code ``python <script>`` runs; ``python -m module`` runs
  the module as ``__main__`` through runpy, as ``-m`` does;
- ``sys.argv``, ``sys.path[0]`` (the script's folder, or the working directory for ``-m``), the
  working directory and the whole environment (``os.environ`` and the C environment), stdin from
  /dev/null, stdout and stderr to files, streams made afresh as the interpreter makes them;
- the interpreter's way out: ``SystemExit``'s code (a number as the status; anything else
  printed, status 1), an uncaught exception's traceback and status 1, non-daemon threads joined,
  atexit handlers run, streams flushed, then ``os._exit``;
- the platform's own packages (``buendnis_common``, the services, the gateway, web, the identity
  provider) are never imported by the server: they read the environment when imported, so each
  child imports them afresh under its own environment. The server refuses to serve if preloading
  pulled one in. prometheus-client is not preloaded either: it picks its value store from the
  environment (``PROMETHEUS_MULTIPROC_DIR``) when imported.

What differs from a fresh interpreter: the preloaded libraries were imported once, under the
server's environment (the test session's; the children's add platform variables, which those
libraries do not read), and the interpreter started up once (site, ``PYTHON*`` variables). The
server starts no thread, so a child inherits no lock held by another thread. It stops when its
stdin closes: when the client closes it, or when the test process dies; its running children are
killed with their process groups then.

Protocol: one JSON line per command on the server's stdin (argv, env, cwd, stdout, stderr); the
server answers ``{"started": pid}`` and later ``{"exited": pid, "returncode": n}``.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: The third-party modules the platform's code and its entry points import themselves (measured
#: with ``python -X importtime`` on gunicorn, Celery worker and beat, a migration and the identity
#: provider); their own imports come along.
PRELOAD = (
    "alembic", "alembic.command", "alembic.config", "alembic.runtime.migration", "alembic.script",
    "authlib.integrations.flask_client", "authlib.integrations.flask_oauth2",
    "authlib.integrations.requests_client", "authlib.oauth2", "authlib.oauth2.rfc7662",
    "babel.messages.catalog", "babel.messages.pofile", "babel.numbers", "babel.support",
    "billiard.pool", "celery", "celery.__main__", "celery.app", "celery.app.task",
    "celery.apps.beat", "celery.apps.worker", "celery.beat", "celery.bin.celery",
    "celery.concurrency.asynpool", "celery.concurrency.prefork", "celery.worker",
    "celery.worker.consumer.consumer", "cffi", "flask", "flask_babel", "flask_cors",
    "flask_limiter", "flask_session.redis", "flask_smorest", "flask_swagger_ui", "flask_wtf.csrf",
    "gunicorn.app.wsgiapp", "gunicorn.arbiter", "gunicorn.ctl.server", "gunicorn.http.wsgi",
    "gunicorn.workers.gthread", "gunicorn.workers.sync", "holidays", "joserfc.jwt", "jwt",
    "kombu.transport.redis", "limits", "openpyxl", "opentelemetry.metrics",
    "opentelemetry.propagate", "opentelemetry.sdk.metrics", "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export", "phonenumbers", "pycountry", "pygal",
    "pythonjsonlogger.json", "redis", "requests", "sqlalchemy", "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite", "sqlalchemy.ext.associationproxy", "sqlalchemy.orm",
)
#: Imported afresh by every child, never by the server.
NOT_PRELOADED = ("buendnis_common", "buendnis_idp", "buendnis_dev", "intake", "referrals",
                 "notifications", "gateway", "web", "prometheus_client")


# -- the client (the test process) --------------------------------------------------------------

class Forked:
    """A child of the fork server, like a ``subprocess.Popen`` whose output goes to files."""

    def __init__(self, server: ForkServer, args: list[str], pid: int, stdout: Path,
                 stderr: Path | None) -> None:
        self.server, self.args, self.pid = server, args, pid
        self.stdout_path, self.stderr_path = stdout, stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_status(self.pid, timeout=0)
        return self.returncode

    def wait(self, timeout: float) -> int:
        if self.returncode is None:
            self.returncode = self.server.exit_status(self.pid, timeout=timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def killpg(self, sig: int) -> None:
        """Signal the child's process group (its session), unless it has been reaped already."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def output(self) -> tuple[str, str]:
        def read(path: Path | None) -> str:
            return path.read_text(encoding="utf-8", errors="replace") if path else ""
        return read(self.stdout_path), read(self.stderr_path)


class ForkServer:
    """The server process and its children; ``close()`` stops both. The server and the children
    write their output to files in ``folder``."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.folder = folder
        self.log = self.folder / "server.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.forkserver"], cwd=REPO, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            )
        self.pending = b""
        self.exits: dict[int, int] = {}
        self.children: dict[int, Forked] = {}
        self.count = 0

    def start(self, command: list[str], *, env: dict[str, str], cwd: Path,
              merge_stderr: bool = False) -> Forked:
        """Start ``command`` (``python -m module …`` or a console script of the venv)."""
        self.count += 1
        stdout = self.folder / f"{self.count}.out"
        stderr = None if merge_stderr else self.folder / f"{self.count}.err"
        request = {"argv": [str(part) for part in command], "env": env, "cwd": str(cwd),
                   "stdout": str(stdout), "stderr": str(stderr) if stderr else None}
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        while True:
            message = self._receive(timeout=120)  # the first waits for the preloading
            if message is None:
                raise RuntimeError(f"the fork server did not answer: {self._log()}")
            if "started" in message:
                child = Forked(self, request["argv"], message["started"], stdout, stderr)
                self.children[child.pid] = child
                return child
            if "refused" in message:
                raise ValueError(message["refused"])

    def run(self, command: list[str], *, env: dict[str, str], cwd: Path,
            timeout: float) -> subprocess.CompletedProcess:
        """Like ``subprocess.run(capture_output=True, text=True, timeout=…)``; on timeout the
        child's process group is killed."""
        child = self.start(command, env=env, cwd=cwd)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.killpg(signal.SIGKILL)
            child.wait(30)
            raise
        return subprocess.CompletedProcess(command, child.returncode, *child.output())

    def exit_status(self, pid: int, *, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while pid not in self.exits:
            message = self._receive(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                return None
        return self.exits[pid]

    def _receive(self, *, timeout: float) -> dict | None:
        """The server's next message, or None if none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            with selectors.DefaultSelector() as selector:
                selector.register(self.process.stdout, selectors.EVENT_READ)
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    return None
            data = os.read(self.process.stdout.fileno(), 65536)
            if not data:
                raise RuntimeError(f"the fork server stopped: {self._log()}")
            self.pending += data
        line, self.pending = self.pending.split(b"\n", 1)
        message = json.loads(line)
        if "exited" in message:
            self.exits[message["exited"]] = message["returncode"]
        return message

    def _log(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    def close(self) -> None:
        for child in self.children.values():
            child.killpg(signal.SIGKILL)
        self.process.stdin.close()  # the server kills what is left and exits
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


# -- the server --------------------------------------------------------------------------------

#: The server's own stream objects: kept referenced in a child, so that collecting them never
#: closes the descriptors 0-2 the child has given to its own streams.
_SERVER_STREAMS = (sys.stdin, sys.stdout, sys.stderr)


def preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:  # no longer installed: its children import what they need
            continue
    imported = sorted(name for name in sys.modules if name.split(".")[0] in NOT_PRELOADED)
    if imported:
        raise SystemExit(f"fork server: preloading imported {imported}; children must import "
                         "those afresh")
    if threading.active_count() != 1:
        raise SystemExit(f"fork server: preloading started threads {threading.enumerate()}")


def entry_point(argv: list[str]):
    """What ``argv`` runs, as a function to call in the child; ValueError for anything else."""
    if argv[0] == sys.executable and argv[1:2] == ["-m"] and len(argv) > 2:
        module, arguments = argv[2], argv[3:]

        def run_module() -> None:
            sys.argv = ["-m", *arguments]  # runpy puts the module's file first, as -m does
            sys.path[0] = os.getcwd()
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        return run_module
    script = Path(argv[0])
    if script.parent == Path(sys.executable).parent and script.is_file():
        with open(script, "rb") as handle:
            shebang = handle.readline().decode(errors="replace").strip()
        if shebang == f"#!{sys.executable}":
            def run_script() -> None:
                sys.argv = list(argv)
                sys.path[0] = str(script.parent)
                runpy.run_path(str(script), run_name="__main__")
            return run_script
    raise ValueError(f"not a console script of {sys.executable} nor `python -m`: {argv}")


def exit_status(run) -> int:
    """Run ``run`` and return the status the interpreter would exit with (negative: the signal
    it would die of)."""
    try:
        run()
    except SystemExit as exit:
        if exit.code is None:
            return 0
        if isinstance(exit.code, int):
            return exit.code & 0xFF
        print(exit.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return -signal.SIGINT
    except BaseException:  # noqa: BLE001 - the interpreter reports any uncaught exception
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def fresh_stream(fd: int, like: io.TextIOWrapper, mode: str) -> io.TextIOWrapper:
    """A text stream on ``fd`` as the interpreter makes it at start (PYTHONUNBUFFERED: written
    through)."""
    unbuffered = mode == "w" and bool(os.environ.get("PYTHONUNBUFFERED"))
    binary = open(fd, mode + "b", buffering=0 if unbuffered else -1, closefd=False)
    return io.TextIOWrapper(binary, encoding=like.encoding, errors=like.errors,
                            line_buffering=like.line_buffering, write_through=unbuffered)


def become(request: dict, inherited: list[int]) -> None:
    """In the forked child: the session, descriptors, directory, environment and streams a fresh
    process of the command would have."""
    os.setsid()
    for fd in inherited:
        os.close(fd)
    stdin = os.open(os.devnull, os.O_RDONLY)
    stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    stderr = (os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
              if request["stderr"] else stdout)
    for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, target)
    for fd in {stdin, stdout, stderr}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdin = sys.__stdin__ = fresh_stream(0, _SERVER_STREAMS[0], "r")
    sys.stdout = sys.__stdout__ = fresh_stream(1, _SERVER_STREAMS[1], "w")
    sys.stderr = sys.__stderr__ = fresh_stream(2, _SERVER_STREAMS[2], "w")


def child(request: dict, run, inherited: list[int]) -> None:
    """In the forked child: become the command's process, run it, exit. Never returns."""
    code = 127  # the child could not become the command's process
    try:
        become(request, inherited)
        code = exit_status(run)
        threading._shutdown()  # as the interpreter at exit: join the non-daemon threads,
        atexit._run_exitfuncs()  # then the atexit handlers
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except BaseException:  # noqa: BLE001 - nothing may return into the server's loop
        with contextlib.suppress(BaseException):  # exiting anyway
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        if code < 0:  # die of the signal, as the interpreter does after KeyboardInterrupt
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)


def serve() -> None:
    preload()
    running: dict[int, int] = {}  # pidfd -> pid
    try:
        loop(running)
    finally:  # the client has gone (or the server failed): its children go too
        for pidfd, pid in running.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(pidfd)


def loop(running: dict[int, int]) -> None:
    """Fork a child for every request, report every child's exit; return when stdin closes."""
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    pending = b""

    def send(message: dict) -> None:  # a line shorter than PIPE_BUF: written at once
        os.write(1, json.dumps(message).encode() + b"\n")

    while True:
        for key, _events in selector.select():
            if key.fd != 0:
                pid = running.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                send({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})
                continue
            data = os.read(0, 1 << 20)
            if not data:  # the client closed the pipe or died
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                try:
                    run = entry_point(request["argv"])
                except ValueError as refusal:
                    send({"refused": str(refusal)})
                    continue
                pid = os.fork()
                if pid == 0:
                    child(request, run, [selector.fileno(), *running])
                pidfd = os.pidfd_open(pid)
                running[pidfd] = pid
                selector.register(pidfd, selectors.EVENT_READ)
                send({"started": pid})


if __name__ == "__main__":
    serve()
