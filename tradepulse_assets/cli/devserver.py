"""``make run``: prepare the embedded instance, seed a useful state, start Dagster and the ingestors.

Why a Python supervisor instead of ``dagster dev &`` in the Makefile: ``dagster dev`` started from a
script inherits SIGINT as ignored and maps SIGTERM onto it, so killing the parent leaves the webserver
and daemon serving (NOTES.md). Here every child starts with default signal handlers restored, this
process forwards SIGINT/SIGTERM to them and asks the kernel to signal it when ``make`` dies, so Ctrl-C or
``kill -TERM <make pid>`` stops everything within seconds.
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10


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


def write_instance_yaml(dagster_home: Path) -> Path:
    """Write the embedded instance's dagster.yaml (telemetry and welcome modal off, queued runs)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    template = resources.files("tradepulse_assets.config").joinpath("dagster.local.yaml").read_text()
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(template)
    os.replace(tmp, target)
    return target


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


class Supervisor:
    """Starts child processes in their own groups and stops them all on exit or signal."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
        out = open(log, "ab") if log else None
        proc = subprocess.Popen(argv, env=env, preexec_fn=_restore_default_signals, stdout=out, stderr=out)
        self.children.append((name, proc))
        print(f"[make run] started {name} (pid {proc.pid})" + (f", log {log}" if log else ""), flush=True)
        return proc

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        for name, proc in self.children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # The whole group, not only our child (reaped above, so it no longer counts): dagster dev's code
            # servers can outlive it for their heartbeat timeout (45 s); what is left at the deadline is killed.
            _wait_for_group(proc.pid, deadline)
            print(f"[make run] stopped {name}", flush=True)


def _wait_for_group(pgid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start the TradePulse Assets dev stack (Dagster UI + daemon).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("TRADEPULSE_UI_PORT", "3000")))
    parser.add_argument("--no-seed", action="store_true", help="start on an empty state")
    parser.add_argument("--no-ingestors", action="store_true", help="do not start the streaming ingestors")
    args = parser.parse_args(argv)

    _die_with_parent()
    home = Path(os.environ.get("TRADEPULSE_HOME", "var")).resolve()
    env = environment(home)
    write_instance_yaml(Path(env["DAGSTER_HOME"]))
    (home / "logs").mkdir(parents=True, exist_ok=True)

    supervisor = Supervisor()
    try:
        return _serve(args, env, home, supervisor)
    except SystemExit as exc:
        return int(exc.code or 0)


def _serve(args, env: dict[str, str], home: Path, supervisor: "Supervisor") -> int:

    def on_signal(signum, _frame):
        # Only unwind here: stopping children waits on them, which must not happen inside a handler that
        # interrupted a wait on the same process (Popen's wait lock is not re-entrant).
        print(f"[make run] {signal.Signals(signum).name}: stopping", flush=True)
        raise SystemExit(0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    bin_dir = Path(sys.executable).parent
    if not args.no_seed:
        from tradepulse_assets.cli.seed import seed_demo_state

        seed_demo_state(env)
    if not args.no_ingestors:
        from tradepulse_assets.markets import load_registry

        if not args.no_seed:
            supervisor.start(
                "simulated vendor", [sys.executable, "-m", "tradepulse_assets.cli.seed"], env,
                log=home / "logs" / "simulated-vendor.log",
            )

        for market in load_registry():
            if market.is_streaming:
                supervisor.start(
                    f"ingestor {market.market_id}",
                    [str(bin_dir / "tradepulse-cli"), "ingest", "stream", "--market", market.market_id],
                    env,
                    log=home / "logs" / f"ingest-{market.market_id}.log",
                )
    dagster = supervisor.start(
        "dagster dev (webserver + daemon)",
        [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)],
        env,
    )
    url = f"http://{args.host}:{args.port}"
    if wait_for_http(f"{url}/server_info", timeout=120, proc=dagster):
        print(f"\n[make run] Dagster UI ready: {url}  (Ctrl-C stops everything)\n", flush=True)
    try:
        return dagster.wait()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the shutdown
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
