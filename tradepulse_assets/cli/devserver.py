"""``make run``: the embedded stack under one supervisor that the first Ctrl-C or SIGTERM always stops.

What it starts, each in its own process group with default signal handlers:

1. one Dagster code server for our location, then the webserver and the daemon pointed at it (a generated
   workspace file), instead of ``dagster dev``: so the order of shutdown is ours (webserver and daemon
   first, the code server last, so nothing logs ``DagsterUserCodeUnreachableError`` on the way out), and
   there is no supersession warning;
2. the seed (``cli/seed.py``) in the background while the UI comes up: it publishes the recent sessions and
   lands the history through real runs; the daemon starts when the seed is done, so the sensors never race
   the history runs (the Runs page shows them arriving, ``var/logs/seed.log`` tells the rest);
3. the simulated vendor loop (``cli/simulated_vendor.py``) and the streaming ingestors.

Why the signal handling looks the way it does: importing polars (the market registry does) installs a native
SIGINT handler with SA_RESTART, so a supervisor blocked in ``wait()`` never runs Python's handler.
This process waits in a short sleep loop and re-installs its handlers on every turn, and the handlers only
set a flag: the loop notices within half a second, whatever was imported. ``PR_SET_PDEATHSIG`` makes a
SIGKILLed supervisor still take its children down.
"""

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tradepulse_assets.core.environment import read
from tradepulse_assets.core.io import atomic_write

PR_SET_PDEATHSIG = 1
# Seconds each stage gets after SIGTERM before SIGKILL: the code server's clients, then everything else.
# Together well under the 10 s the operator is promised, on a loaded 2-core machine. Nothing here holds state a SIGKILL
# could lose: writes are atomic and run monitoring fails a killed run on the next start.
STAGE_GRACE_SECONDS = (2.0, 3.0)
POLL_SECONDS = 0.5
LOCATION_NAME = "tradepulse_assets"
DEFS_MODULE = "tradepulse_assets.location"


def _restore_default_signals() -> None:  # runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()  # own process group, so we can stop the whole tree
    _die_with_parent()  # and a SIGKILLed supervisor still takes its children down


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def write_instance_yaml(dagster_home: Path, env: dict[str, str] | None = None) -> Path:
    """Write the embedded instance's dagster.yaml (telemetry and welcome modal off, queued runs, checked
    every ``TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS``)."""
    template = resources.files("tradepulse_assets.config").joinpath("dagster.local.yaml").read_text()
    interval = read("TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS", env)
    if not interval.isdigit() or int(interval) < 1:
        raise SystemExit(f"TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS must be whole seconds >= 1: {interval!r}")
    text = template.replace("{run_queue_interval_seconds}", str(int(interval)))
    return atomic_write(dagster_home / "dagster.yaml", text.encode(), fsync=False)  # rewritten on every start


def write_code_server_workspace(dagster_home: Path, host: str, port: int) -> Path:
    """A workspace file that points the webserver and the daemon at our one code server."""
    text = (
        "load_from:\n"
        f"  - grpc_server:\n      host: {host}\n      port: {port}\n      location_name: {LOCATION_NAME}\n"
    )
    return atomic_write(dagster_home / "workspace.yaml", text.encode(), fsync=False)  # rewritten each start


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TRADEPULSE_HOME", str(home))
    env.setdefault("DAGSTER_HOME", str(home / "dagster"))
    env.setdefault("TRADEPULSE_LAG_LOOKBACK_SESSIONS", "2")  # the seeded history (cli/seed.py)
    clock = env.get("TRADEPULSE_CLOCK", "")
    if clock.startswith("simulated:") and "@" not in clock:
        # Anchor simulated time now, so the daemon, run workers and ingestors share one "now".
        env["TRADEPULSE_CLOCK"] = f"{clock}@{time.time():.3f}"
    return env


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stage: int  # stopped in ascending order: the code server's clients (webserver, daemon) first


@dataclass
class Supervisor:
    """Starts children in their own process groups; stops every group, stage by stage, on exit or signal."""

    children: list[Child] = field(default_factory=list)
    stop_requested: str | None = None

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path | None = None, stage: int = 1
              ) -> subprocess.Popen:
        out = open(log, "ab") if log else None
        try:
            proc = subprocess.Popen(argv, env=env, preexec_fn=_restore_default_signals, stdout=out,
                                    stderr=out, stdin=subprocess.DEVNULL)
        finally:
            if out:
                out.close()
        self.children.append(Child(name, proc, stage))
        say(f"started {name} (pid {proc.pid})" + (f", log {log}" if log else ""))
        return proc

    def install_handlers(self) -> None:
        """(Re-)install the SIGINT/SIGTERM handlers; cheap, so the wait loop does it on every turn."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        self.stop_requested = signal.Signals(signum).name

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` in short turns; False as soon as a stop was requested."""
        deadline = time.monotonic() + seconds
        while self.stop_requested is None:
            self.install_handlers()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            time.sleep(min(POLL_SECONDS, remaining))
        return False

    def wait(self, proc: subprocess.Popen) -> bool:
        """Wait for ``proc`` to exit; False if a stop was requested first."""
        while proc.poll() is None:
            if not self.sleep(POLL_SECONDS):
                return False
        return True

    def stop(self) -> float:
        """Stop every child's whole process group; returns the seconds it took."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the shutdown
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started = time.monotonic()
        for stage in sorted({c.stage for c in self.children}):
            group = [c for c in self.children if c.stage == stage]
            for child in group:
                _signal_group(child.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + STAGE_GRACE_SECONDS[stage]
            for child in group:
                _reap(child.proc, deadline)
                # The whole group, not only our child: code servers and run workers live in it too.
                _wait_for_group(child.proc.pid, deadline)
                say(f"stopped {child.name} ({time.monotonic() - started:.1f}s)")
        return time.monotonic() - started


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _reap(proc: subprocess.Popen, deadline: float) -> None:
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_for_group(pgid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def streaming_market_ids() -> list[str]:
    from tradepulse_assets.markets import load_registry  # imports polars: handlers are re-installed after it

    return [market.market_id for market in load_registry() if market.is_streaming]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start the TradePulse Assets dev stack (UI + daemon).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(read("TRADEPULSE_UI_PORT")))
    parser.add_argument("--no-seed", action="store_true", help="start on an empty state")
    parser.add_argument("--no-ingestors", action="store_true", help="do not start the streaming ingestors")
    args = parser.parse_args(argv)

    _die_with_parent()
    home = Path(read("TRADEPULSE_HOME")).resolve()
    env = environment(home)
    dagster_home = Path(env["DAGSTER_HOME"])
    write_instance_yaml(dagster_home, env)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    supervisor = Supervisor()
    supervisor.install_handlers()
    try:
        code = serve(args, env, home, supervisor)
    finally:
        seconds = supervisor.stop()
        say(f"everything stopped in {seconds:.1f}s")
    return code


def serve(args, env: dict[str, str], home: Path, supervisor: Supervisor) -> int:
    """Start the stack and watch it until a signal, or until a child that must not exit exits."""
    logs, bin_dir = home / "logs", Path(sys.executable).parent
    dagster_home = Path(env["DAGSTER_HOME"])
    # The instance's SQLite schema is created once, before anything opens it: processes creating it at the
    # same time leave two alembic heads behind and every later start fails.
    migrate = supervisor.start("instance migration", [str(bin_dir / "dagster"), "instance", "migrate"], env,
                               log=logs / "instance.log")
    if not supervisor.wait(migrate):
        return stopped(supervisor)
    if migrate.returncode != 0:
        say(f"dagster instance migrate failed: see {logs / 'instance.log'}")
        return 1
    code_port = free_port(args.host)
    workspace = write_code_server_workspace(dagster_home, args.host, code_port)
    essential = [
        supervisor.start(
            "code server",
            [str(bin_dir / "dagster"), "code-server", "start", "-m", DEFS_MODULE, "-h", args.host,
             "-p", str(code_port), "--location-name", LOCATION_NAME],
            env,
            log=logs / "code-server.log",
        )
    ]
    seed = None
    if not args.no_seed:
        seed = supervisor.start("seed", [sys.executable, "-m", "tradepulse_assets.cli.seed"], env,
                                log=logs / "seed.log")
    webserver = daemon = None
    url = f"http://{args.host}:{args.port}"
    ready = False
    while supervisor.sleep(POLL_SECONDS):
        dead = next((p for p in essential if p.poll() is not None), None)
        if dead is not None:
            name = next(c.name for c in supervisor.children if c.proc is dead)
            say(f"{name} exited with code {dead.returncode}; stopping (logs in {logs})")
            return 1
        if webserver is None and port_open(args.host, code_port):  # the code server answers once loaded
            webserver = supervisor.start(
                "webserver", [str(bin_dir / "dagster-webserver"), "-w", str(workspace), "-h", args.host,
                              "-p", str(args.port)], env, log=logs / "webserver.log", stage=0,
            )
            essential.append(webserver)
        if webserver is not None and not ready and http_ok(f"{url}/server_info"):
            ready = True
            arriving = " The seeded history is still arriving (Runs page; logs/seed.log)." if not daemon else ""
            say(f"Dagster UI ready: {url}  (Ctrl-C stops everything).{arriving}")
        if webserver is not None and daemon is None and (seed is None or seed.poll() is not None):
            if seed is not None:
                say("seeded history landed; starting the daemon (sensors, run queue)" if seed.returncode == 0
                    else f"seed exited with code {seed.returncode}: see {logs / 'seed.log'}")
            daemon_argv = [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)]
            daemon = supervisor.start("daemon", daemon_argv, env, log=logs / "daemon.log", stage=0)
            essential.append(daemon)
            start_feeds(args, env, logs, supervisor)
    return stopped(supervisor)


def stopped(supervisor: Supervisor) -> int:
    say(f"{supervisor.stop_requested}: stopping")
    return 0


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def start_feeds(args, env: dict[str, str], logs: Path, supervisor: Supervisor) -> None:
    """The simulated vendor loop and the streaming ingestors (after the seed, so they extend its history)."""
    if args.no_ingestors:
        return
    if not args.no_seed:
        supervisor.start("simulated vendor", [sys.executable, "-m", "tradepulse_assets.cli.simulated_vendor"],
                         env, log=logs / "simulated-vendor.log")
    for market_id in streaming_market_ids():
        supervisor.install_handlers()
        supervisor.start(
            f"ingestor {market_id}",
            [str(Path(sys.executable).parent / "tradepulse-cli"), "ingest", "stream", "--market", market_id],
            env, log=logs / f"ingest-{market_id}.log",
        )


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)  # every child is gone; skip tearing polars and numba down (seconds when loaded)
