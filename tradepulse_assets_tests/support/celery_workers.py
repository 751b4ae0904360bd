"""A Redis broker and Celery workers as real processes, each worker on its own "machine" (home, temp, cwd).

Why processes and not Celery's in-process test worker: the point is that steps run where the run's
orchestrator is not, rebuild the job from its code pointer, and find everything they need through PostgreSQL
and S3. Each worker gets an empty ``TRADEPULSE_HOME``, ``DAGSTER_HOME``, ``TMPDIR`` and working directory of
its own, so a step that reached for a local path another step wrote would fail instead of passing by accident.

Workers run ``celery -A dagster_celery.app worker`` (dagster-celery's own app; ``-b``/``--result-backend``
name the broker, the way docs/production.md starts them) in their own process group: stopping one stops its
pool.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tradepulse_assets.defs.executors import CELERY_QUEUE

REDIS_SERVER = "redis-server"


@dataclass(frozen=True)
class Worker:
    name: str  # the Celery node name, as dagster-celery records it ("Celery worker" of each step)
    pid: int  # the worker's main process; its pool child executes the steps
    root: Path  # its own home, temp and working directory: the worker's "machine"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def log(self) -> Path:
        return self.root / "worker.log"


def redis_available() -> bool:
    return shutil.which(REDIS_SERVER) is not None


def _wait_for(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s\n{tail}")


def _stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process group (a warm shutdown for Celery), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@contextlib.contextmanager
def redis_broker(port: int, directory: Path) -> Iterator[str]:
    """A throwaway ``redis-server`` on 127.0.0.1:``port`` (no persistence); yields its URL."""
    import redis

    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "redis.log"
    process = subprocess.Popen(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--logfile", str(log)],
        start_new_session=True,
    )
    client = redis.Redis(host="127.0.0.1", port=port)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode} (port {port} taken?)\n"
                               f"{log.read_text(errors='replace') if log.exists() else ''}")
        with contextlib.suppress(redis.ConnectionError):
            return client.ping()
        return False

    try:
        _wait_for(answers, 20, f"redis-server on port {port}", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        _stop(process)


def _answering(broker_url: str, names: list[str]) -> set[str]:
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(destination=names, timeout=1.0) or []
    finally:
        app.close()
    return {name for reply in replies for name in reply}


@contextlib.contextmanager
def celery_workers(broker_url: str, root: Path, names: list[str], env: dict[str, str],
                   pythonpath: str) -> Iterator[list[Worker]]:
    """Start one worker per name (one pool process each) with ``env`` plus its own home and temp; stop all.

    ``env`` is what every machine shares (PostgreSQL, S3, the broker, the profile); what is per machine is
    replaced here.
    """
    processes: list[subprocess.Popen] = []
    workers: list[Worker] = []
    try:
        for name in names:
            machine = root / name
            for sub in ("home", "dagster_home", "tmp", "cwd"):
                (machine / sub).mkdir(parents=True, exist_ok=True)
            worker_env = {
                **env,
                "TRADEPULSE_HOME": str(machine / "home"),
                "DAGSTER_HOME": str(machine / "dagster_home"),
                "TMPDIR": str(machine / "tmp"),
                "PYTHONPATH": pythonpath,
            }
            node = f"{name}@%h"
            with open(machine / "worker.log", "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "-b", broker_url,
                     "--result-backend", broker_url, "worker", "-Q", CELERY_QUEUE, "-n", node,
                     "--concurrency", "1", "--prefetch-multiplier", "1", "--without-gossip",
                     "--without-mingle", "--loglevel", "INFO"],
                    cwd=machine / "cwd", env=worker_env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            processes.append(process)
            workers.append(Worker(node.replace("%h", os.uname().nodename), process.pid, machine))
        names_expected = [w.name for w in workers]

        def all_answer() -> bool:
            for worker, process in zip(workers, processes):
                if process.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} exited with {process.returncode}:\n"
                                       f"{worker.log.read_text(errors='replace')[-3000:]}")
            return _answering(broker_url, names_expected) == set(names_expected)

        _wait_for(all_answer, 90, f"Celery workers {names_expected}", workers[0].log)
        yield workers
    finally:
        for process in processes:
            _stop(process)


def parent_pid(pid: int) -> int | None:
    """The parent of a live process (``/proc``), or None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
