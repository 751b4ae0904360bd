"""Start-up cost: the code location's import and ``tradepulse-cli --help`` in fresh processes (issue #14).

One command: ``make bench-startup``. Every side is a fresh interpreter, started in turn round by round (the
order rotates per round, so load from other work hits all sides alike); printed are the median wall and CPU
seconds of each side and the ratios to its floor:

- ``python``: the interpreter alone (``-c pass``), the floor of every process;
- ``import dagster``: what any Dagster code location pays before its own code (the fair peer of the
  location's import);
- ``location``: ``import tradepulse_assets.location``, which builds the whole ``Definitions`` the webserver,
  daemon and run workers load (``workspace.yaml``);
- ``dagster --help``: Dagster's own CLI (the peer of ours);
- ``tradepulse-cli --help``: ours.

Targets (#14): the code location imports in under 2 s warm, ``tradepulse-cli --help`` in under 0.5 s. "Warm"
means the OS page cache and Python's bytecode are warm: one unmeasured round runs first. The bytecode cache
matters: with ``PYTHONDONTWRITEBYTECODE=1`` (set on some machines) no ``.pyc`` is ever written for a checkout,
so every import compiles the package again; the header says which applies.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SIDES = {
    "python": [sys.executable, "-c", "pass"],
    "import dagster": [sys.executable, "-c", "import dagster"],
    "location": [sys.executable, "-c", "import tradepulse_assets.location"],
    "dagster --help": [str(BIN / "dagster"), "--help"],
    "tradepulse-cli --help": [str(BIN / "tradepulse-cli"), "--help"],
}
FLOOR = {"location": "import dagster", "tradepulse-cli --help": "dagster --help"}
TARGETS = {"location": 2.0, "tradepulse-cli --help": 0.5}


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system of the child) seconds of one fresh process; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = os.times().elapsed
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = os.times().elapsed - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bytecode_note() -> str:
    package_cache = REPO / "tradepulse_assets" / "__pycache__"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        state = "written before" if package_cache.exists() else "never written: every import compiles"
        return f"PYTHONDONTWRITEBYTECODE is set; the package's bytecode was {state}"
    return "bytecode cached (PYTHONDONTWRITEBYTECODE unset)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    names = list(SIDES)
    print(f"bench-startup on {os.cpu_count()} cores, load {load()} at start; {bytecode_note()}")
    for command in SIDES.values():  # the unmeasured warm-up round
        timed(command)
    walls = {name: [] for name in names}
    cpus = {name: [] for name in names}
    for round_no in range(args.rounds):
        order = names[round_no % len(names):] + names[: round_no % len(names)]
        for name in order:
            wall, cpu = timed(SIDES[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
    print(f"medians of {args.rounds} interleaved rounds; x = side / its floor (wall)")
    print(f"{'side':<24}{'wall s':>8}{'cpu s':>8}{'x floor':>9}  target")
    failed = False
    for name in names:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        floor = FLOOR.get(name)
        ratio = f"{wall / statistics.median(walls[floor]):.2f}" if floor else "-"
        target = TARGETS.get(name)
        verdict = "-"
        if target is not None:
            met = wall < target
            failed |= not met
            verdict = f"< {target} s: {'met' if met else 'NOT met'}"
        print(f"{name:<24}{wall:>8.2f}{cpu:>8.2f}{ratio:>9}  {verdict}")
    print(f"load at end {load()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
