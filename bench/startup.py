"""Benchmark: `make run` from a fresh clone to a healthy gateway, and a second start.

Each run clones the repository's HEAD into a temporary directory (``git clone --quiet``) and
starts ``make run`` there twice, each time on free ports for every process (the variables the
Makefile and the Procfile read, as tests/test_make_run.py does), with the databases and ``var/``
the clone's defaults (what a user gets):

- fresh clone: no ``.venv`` yet, so the time includes creating it and installing
  requirements.txt and the platform's packages (never the test tools), then migrating;
- second start: the same clone again, ``.venv`` and ``var/`` left from the first start.

From the moment ``make run`` is started it measures the seconds until
(a) the gateway's ``/healthz`` answers 200, (b) a signed-in ``GET /api/v1/me`` through the
gateway answers 200 (a token from the local identity provider: cw.jmd-leverkusen / demo, client
buendnis-cli, as the README shows), (c) the ``demo`` process prints "demo data loaded". From the
lines make echoes it also splits the time to (a) into creating the venv, installing, migrating
(with make's own start on a second start) and the processes coming up, and it sums the CPU time
all processes of the run have used by then (by Procfile process, and venv plus pip apart: what
the start costs, whatever else loads the machine). The venv is installed with uv (Makefile):
whether uv's cache is warm is printed, and on a cold one the fresh clone's time includes
downloading; ``--cold-cache`` gives each fresh clone an empty cache of its own (what a new
machine or a CI machine without the cache gets). Each start is then stopped as Ctrl-C
would (SIGTERM to the process group, then waiting), and no process of it may be left (found by
a marker in their environment). Prints each start, then the median and the spread (min–max)
over ``--runs`` as a table, and the load average before and after.

    .venv/bin/python bench/startup.py [--runs 3] [--timeout 600] [--logs DIR] [--cold-cache]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.platform import METRICS_PROCESSES, free_port  # noqa: E402
from tests.test_make_run import command_line, lines_of, processes_with  # noqa: E402

USER, PASSWORD, CLIENT = "cw.jmd-leverkusen", "demo", "buendnis-cli"
PORTS = ("GATEWAY_PORT", "IDP_PORT", "INTAKE_PORT", "REFERRALS_PORT", "NOTIFICATIONS_PORT",
         "REDIS_PORT", "WEB_REDIS_PORT", "SMTP_PORT", "SMS_PORT", "WEB_PORT")
# What make echoes before each step of `make run` (Makefile): the moment a line appears is the
# moment the step before it ended.
STEPS = (("venv", "setuptools=="), ("install", "buendnis_common.migrate all"),
         ("migrate", "buendnis_dev.supervise Procfile"))
MILESTONES = ("healthz", "me", "demo")
PHASES = ("venv", "install", "migrate", "up")
TICK = os.sysconf("SC_CLK_TCK")


def environment(marker: str) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of one `make run`: free ports for every process, no URL of the caller's
    (database URLs of another run), a fresh shell's PATH (not this script's venv), and the
    marker that finds its processes again."""
    own_venv = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items()
           if not key.endswith("_URL") and key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHON")}
    env["PATH"] = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep)
                                  if part != own_venv)
    ports = {name: free_port() for name in PORTS}
    ports.update({f"{name.upper().replace('-', '_')}_METRICS_PORT": free_port()
                  for name in METRICS_PROCESSES})
    env.update({name: str(port) for name, port in ports.items()})
    env["BUENDNIS_RUN_MARKER"] = marker
    return env, ports


def cpu_seconds(marker: str) -> dict[str, float]:
    """The CPU time (user + system) this run's processes have used so far, by the Procfile
    process they run under; "make" for the rest (make, the venv, pip, the migration,
    supervisor). A process's own time and that of its children that ended (cutime, cstime),
    so every process of the run counts once."""
    stats: dict[int, tuple[int, float]] = {}
    for pid in processes_with(marker):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # state ppid … utime stime cutime cstime: fields 1 and 11-14 after the command's name.
        stats[pid] = (int(fields[1]), sum(int(value) for value in fields[11:15]) / TICK)

    def name(pid: int) -> str:
        seen: set[int] = set()
        while pid in stats and pid not in seen:
            seen.add(pid)
            words = command_line(pid)
            if "child" in words[:-1] and "buendnis_dev.supervise" in words:
                return words[words.index("child") + 1]
            pid = stats[pid][0]
        return "make"

    totals: dict[str, float] = {}
    for pid, (_parent, cpu) in stats.items():
        totals[name(pid)] = totals.get(name(pid), 0.0) + cpu
    return totals


def signed_in_me(gateway: str, idp: str) -> bool:
    answer = requests.post(f"{idp}/realms/buendnis/protocol/openid-connect/token", data={
        "grant_type": "password", "client_id": CLIENT, "username": USER, "password": PASSWORD,
    }, timeout=10)
    if answer.status_code != 200:
        return False
    me = requests.get(f"{gateway}/api/v1/me", timeout=10,
                      headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    return me.status_code == 200


def start(clone: Path, output: Path, timeout: float,
          uv_cache: Path | None = None) -> dict[str, float]:
    """One `make run` in ``clone``: the seconds to each milestone and step, and to stop; with
    ``uv_cache``, uv (the Makefile's installer) uses that cache instead of the machine's."""
    marker = str(uuid.uuid4())
    env, ports = environment(marker)
    if uv_cache is not None:
        env["UV_CACHE_DIR"] = str(uv_cache)
    gateway = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
    idp = f"http://127.0.0.1:{ports['IDP_PORT']}"
    seen: dict[str, float] = {}
    with open(output, "wb") as log:
        started = time.monotonic()
        make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    failure = None
    try:
        while not all(name in seen for name in MILESTONES):
            now = time.monotonic() - started
            text = output.read_text(errors="replace")
            for step, echoed in STEPS:
                if step not in seen and echoed in text:
                    seen[step] = now
                    if step == "install":  # venv and pip have ended: their CPU is make's
                        seen["cpu:install"] = cpu_seconds(marker).get("make", 0.0)
            # Not answering yet is what the loop waits out: ask again at the next turn.
            with contextlib.suppress(requests.RequestException):
                if "healthz" not in seen:
                    if requests.get(f"{gateway}/healthz", timeout=5).status_code == 200:
                        seen["healthz"] = time.monotonic() - started
                        cpu = cpu_seconds(marker)
                        seen["cpu"] = sum(cpu.values())
                        seen.update({f"cpu@{name}": value for name, value in cpu.items()})
                elif "me" not in seen and signed_in_me(gateway, idp):
                    seen["me"] = time.monotonic() - started
            if "demo" not in seen and any("demo data loaded" in line
                                          for line in lines_of(output, "demo")):
                seen["demo"] = time.monotonic() - started
            if make.poll() is not None:
                failure = f"make run ended with {make.returncode}"
                break
            if now > timeout:
                failure = f"not all of {MILESTONES} within {timeout:.0f} s (seen: {sorted(seen)})"
                break
            time.sleep(0.2)
    finally:
        stopping = time.monotonic()
        os.killpg(make.pid, signal.SIGTERM)  # what Ctrl-C in a terminal amounts to
        try:
            make.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
        # make ends at once; supervisor goes on stopping each process (≤ 25 s before it kills).
        deadline = time.monotonic() + 60
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
        seen["stop"] = time.monotonic() - stopping
        left = {pid: " ".join(command_line(pid))[:120] for pid in processes_with(marker)}
        for pid in left:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, signal.SIGKILL)
    if left:
        failure = f"{len(left)} processes left after stopping: {left}"
    if failure:
        tail = "\n".join(line for line in output.read_text(errors="replace").splitlines()
                         if "Sending due task" not in line)[-4000:]
        raise SystemExit(f"{failure}\n--- make run said (end) ---\n{tail}")
    # The steps: each ends where the next one's line appears; the processes end at /healthz.
    # Without a venv to make (second start), make goes straight to migrating.
    marks = [("venv", seen.get("venv")),
             ("install", seen.get("install") if "venv" in seen else None),
             ("migrate", seen.get("migrate")), ("up", seen["healthz"])]
    previous = 0.0
    for phase, mark in marks:
        if mark is not None:
            seen[f"phase:{phase}"] = mark - previous
            previous = mark
    return seen


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def spread(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def uv_cache(cold: bool) -> str:
    if cold:
        return "uv's cache: a new empty one for each fresh clone (cold): everything is downloaded"
    cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache/uv")
    return f"uv's cache {cache}: " + (
        "present (warm after the first run)" if cache.exists()
        else "absent (cold): the first fresh clone downloads, the later ones use it")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds a start may take before the run counts as failed")
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep each start's output of make run in this directory")
    parser.add_argument("--cold-cache", action="store_true",
                        help="an empty uv cache for each fresh clone, as on a new machine")
    args = parser.parse_args()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    loads = [load()]
    print(f"make run from a clone of HEAD {head}, {args.runs} runs; {os.cpu_count()} cores, "
          f"load average before {loads[0]}", flush=True)
    print(f"  {uv_cache(args.cold_cache)}", flush=True)
    results: dict[str, list[dict[str, float]]] = {"fresh clone": [], "second start": []}
    for run in range(1, args.runs + 1):
        workdir = Path(tempfile.mkdtemp(prefix="buendnis-bench-startup."))
        try:
            clone = workdir / "buendnis"
            cloning = time.monotonic()
            subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
            cloned = time.monotonic() - cloning
            for case in results:
                output = (args.logs or workdir) / f"run{run}-{case.replace(' ', '-')}.log"
                before = load()
                cache = workdir / "uv-cache" if args.cold_cache else None
                seen = start(clone, output, args.timeout, cache)
                results[case].append(seen)
                print(f"run {run} {case:<12}: healthz {seen['healthz']:5.1f} s, me "
                      f"{seen['me']:5.1f} s, demo data {seen['demo']:5.1f} s | "
                      + ", ".join(f"{phase} {seen[f'phase:{phase}']:.1f}" for phase in PHASES
                                  if f"phase:{phase}" in seen)
                      + f" | stopped in {seen['stop']:.1f} s, none left | load {before}"
                      + (f" | clone {cloned:.1f} s" if case == "fresh clone" else ""),
                      flush=True)
                busiest = sorted(((value, key[4:]) for key, value in seen.items()
                                  if key.startswith("cpu@")), reverse=True)
                print(f"    CPU s until /healthz {seen['cpu']:.1f}: " + ", ".join(
                    f"{name} {value:.1f}" for value, name in busiest), flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"Seconds from `make run`, median (min–max) of {args.runs} runs; {os.cpu_count()} cores, "
          f"load average before {loads[0]}, after {load()}:")
    print()
    rows = [("gateway `/healthz` 200", "healthz"),
            ("… of which creating the venv", "phase:venv"),
            ("… installing requirements.txt and the platform's packages", "phase:install"),
            ("… migrating", "phase:migrate"),
            ("… the processes up to the gateway's `/healthz`", "phase:up"),
            ("signed-in `GET /api/v1/me` through the gateway 200", "me"),
            ("demo data loaded", "demo"),
            ("CPU seconds used until `/healthz` (all processes)", "cpu"),
            ("… of which creating the venv and installing", "cpu:install"),
            ("stopping (SIGTERM until no process is left)", "stop")]
    print(f"| {'':<58} | {'fresh clone':<19} | {'second start':<19} |")
    print(f"|{'-' * 60}|{'-' * 21}|{'-' * 21}|")
    for label, key in rows:
        cells = [spread([seen[key] for seen in seens if key in seen]).strip()
                 for seens in results.values()]
        print(f"| {label:<58} | {cells[0]:<19} | {cells[1]:<19} |")
    print()
    fresh = statistics.median(seen["healthz"] for seen in results["fresh clone"])
    print(f"aim (issue 14): a fresh clone's gateway healthy in under 60 s: "
          f"{'met' if fresh < 60 else 'not met'} (median {fresh:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
