"""Start the real ``make run`` stack (webserver + daemon, through our supervisor) for a test and stop it.

Processes are found afterwards by the ``TRADEPULSE_HOME`` in their environment, so a test can prove that
stopping the supervisor left nothing serving.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with_env(marker: str) -> list[int]:
    """PIDs whose environment contains ``marker`` (e.g. ``TRADEPULSE_HOME=/tmp/x``)."""
    needle = marker.encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


class Stack:
    def __init__(self, proc: subprocess.Popen, url: str, home: Path, log: Path):
        self.proc, self.url, self.home, self.log = proc, url, home, log

    def wait_ready(self, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"make run stack exited early:\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"webserver not ready after {timeout}s:\n{self.log.read_text()[-4000:]}")

    def stop(self, timeout: float = 30, signum: int = signal.SIGTERM) -> float:
        """Signal the supervisor; returns the seconds until every process of the stack was gone."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        marker = f"TRADEPULSE_HOME={self.home}"
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None and not processes_with_env(marker):
                return time.monotonic() - started
            time.sleep(0.2)
        leftovers = processes_with_env(marker)
        described = [f"{pid}: {_cmdline(pid)}" for pid in leftovers]
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise AssertionError(f"processes still alive {timeout}s after SIGTERM: {described}")


@contextmanager
def dagster_stack(home: Path, extra_args: list[str] = (), env: dict | None = None):
    port = free_port()
    log = home / "stack.log"
    home.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "TRADEPULSE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        **(env or {}),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradepulse_assets.cli.devserver", "--port", str(port), *extra_args],
            cwd=REPO,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack = Stack(proc, f"http://127.0.0.1:{port}", home, log)
    try:
        stack.wait_ready()
        yield stack
    finally:
        if proc.poll() is None or processes_with_env(f"TRADEPULSE_HOME={home}"):
            stack.stop()
