"""Benchmark: the project's gate suite against the strongest peers we could write, on the same bars.

    make bench-gates                                   # sizes 1 M, 3 M, 10 M bars, 3 rounds each
    .venv/bin/python benchmarks/bench_gates.py --symbols 100,300 --rounds 2   # quicker

Each size is SYMBOLS x 7 CRYPTO (24/7) sessions x 1,440 minutes (1,000 symbols: 10,080,000 bars), delivered
minute by minute with seeded faults of every kind (gaps per symbol and market-wide, duplicates,
out-of-order rows, OHLC violations, negative/NaN volume, x100 price errors, frozen runs, off-minute stamps),
written once to Parquet. Three sides compute the same 21 counts (peers in ``benchmarks/peers_gates.py``):

- ``project``: ``quality.run_gate_suite`` (every gate, evidence and summaries included);
- ``duckdb``: tuned DuckDB SQL (ENUM symbol codes, lag/lead windows, no per-cell expansion, threads=2);
- ``polars``: the same checks as one plain polars lazy query (``collect_all`` once, no Python loops).

Two ways each: **file to counts** (read the Parquet file and run the checks: DuckDB loads it into a typed
table, polars scans it lazily, the project reads a DataFrame) and **in memory** (the data already loaded:
the project's and polars' DataFrame, DuckDB's table). Every round runs each side in a fresh subprocess, in an
order that rotates between rounds, so load from other work on the shared cores hits all sides alike; a
side's peak memory is its process's ``ru_maxrss``. Imports are warmed before timing (the project's schema gate imports
pandera on first use; that is start-up, not gate work). Printed per size: medians of wall seconds (and CPU
seconds, which load disturbs less), peak RSS, ratios (peer median / project median) and the load average.
Any count that differs between sides (either way, any round) fails the run (exit 1).
"""

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

MARKET, CALENDAR = "CRYPTO", "24/7"
FIRST_SESSION = dt.date(2026, 3, 1)
STALE_MIN = 10
SPIKE_Z = 100.0

COMPARED = (
    "rows",
    "ohlc_rows_violating",
    "low_above_body",
    "high_below_body",
    "low_above_high",
    "non_positive_or_non_finite",
    "negative",
    "non_finite",
    "duplicate_rows",
    "duplicated_keys",
    "rows_out_of_order",
    "rows_misaligned",
    "expected",
    "present",
    "missing",
    "gap_windows",
    "returns",
    "spikes",
    "scale_breaks",
    "stale_runs",
    "stale_bars",
)


def sessions(n: int) -> list[dt.date]:
    return [FIRST_SESSION + dt.timedelta(days=i) for i in range(n)]


def expected_minutes(n_sessions: int) -> np.ndarray:
    from tradepulse_assets.markets import calendar_for

    cal = calendar_for(MARKET, CALENDAR)
    return np.concatenate([cal.minutes(s) for s in sessions(n_sessions)]).astype("datetime64[us]")


def generate(path: Path, n_sym: int, n_sessions: int, seed: int = 20260301) -> int:
    """Write the synthetic delivery to ``path``; returns its row count."""
    rng = np.random.default_rng(seed)
    minutes = expected_minutes(n_sessions)
    n_min = minutes.size
    r = 1e-3 * rng.standard_normal((n_min, n_sym))
    start = rng.uniform(20, 500, n_sym)
    close = start * np.exp(np.cumsum(r, axis=0))
    del r
    open_ = np.empty_like(close)
    open_[0], open_[1:] = start, close[:-1]
    high = np.maximum(open_, close) * np.exp(1e-3 * np.abs(rng.standard_normal((n_min, n_sym))))
    low = np.minimum(open_, close) * np.exp(-1e-3 * np.abs(rng.standard_normal((n_min, n_sym))))
    volume = rng.integers(1, 10_000, (n_min, n_sym)).astype(np.float64)
    ts = np.broadcast_to(minutes.view("int64")[:, None], (n_min, n_sym)).copy()

    # faults on distinct cells away from the edges (cell = minute * n_sym + symbol)
    cells = rng.choice(np.arange(20 * n_sym, (n_min - 40) * n_sym), size=137, replace=False)
    ohlc, neg, nan, scale, off, swap, dup, stale = np.split(cells, [30, 40, 45, 55, 62, 82, 132])
    fm = lambda c: (c // n_sym, c % n_sym)
    m, s = fm(ohlc)
    low[m, s] = high[m, s] * 1.01
    volume[fm(neg)] = -1.0
    volume[fm(nan)] = np.nan
    m, s = fm(scale)
    for arr in (open_, high, low, close):
        arr[m, s] *= 100.0
    ts[fm(off)] += 30_000_000
    m, s = fm(swap)
    ts[m, s], ts[m + 1, s] = ts[m + 1, s].copy(), ts[m, s].copy()
    for c in stale:
        m, s = fm(c)
        for arr in (open_, high, low, close):
            arr[m : m + 15, s] = close[m, s]
    keep = np.ones((n_min, n_sym), dtype=bool)
    keep[100:160, 7 % n_sym] = False  # one symbol, one hour
    keep[5000:5005, :] = False  # everyone, five minutes (market-wide)
    order = np.flatnonzero(keep.ravel())
    order = np.sort(
        np.concatenate([order, dup[keep.ravel()[dup]]]), kind="stable"
    )  # a duplicate follows its row
    symbols = np.array([f"S{i:04d}" for i in range(n_sym)], dtype=object)
    frame = pl.DataFrame(
        {
            "symbol": pl.Series(symbols.tolist()).gather(order % n_sym),
            "ts": pl.Series(ts.ravel()[order]).cast(pl.Datetime("us", "UTC")),
            "open": open_.ravel()[order],
            "high": high.ravel()[order],
            "low": low.ravel()[order],
            "close": close.ravel()[order],
            "volume": volume.ravel()[order],
        }
    )
    frame.write_parquet(path, compression="lz4")
    return frame.height


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def expected_frame(n_sessions: int) -> pl.DataFrame:
    minutes = expected_minutes(n_sessions)
    ts = pl.Series(minutes).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame({"ts": ts, "idx": np.arange(minutes.size, dtype=np.int64)})


def timed(fn, *args):
    """(result, wall seconds, CPU seconds of this process, every thread)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


# --- the sides: each returns {mode: (counts, wall s, cpu s)} -------------------------------------------
def project_counts(frame: pl.DataFrame, n_sessions: int) -> dict:
    from tradepulse_assets.markets import calendar_for
    from tradepulse_assets.quality import GateConfig, run_gate_suite

    config = GateConfig(spike_z_threshold=SPIKE_Z, stale_min_minutes=STALE_MIN)
    results = run_gate_suite(
        frame, calendar_for(MARKET, CALENDAR), sessions(n_sessions), vendor_total=frame.height, config=config
    )
    c = {r.gate: r.counts for r in results}
    return {
        "rows": frame.height,
        "ohlc_rows_violating": c["ohlc_consistency"]["rows_violating"],
        **{
            k: c["ohlc_consistency"][k]
            for k in ("low_above_body", "high_below_body", "low_above_high", "non_positive_or_non_finite")
        },
        "negative": c["negative_volume"]["negative"],
        "non_finite": c["negative_volume"]["non_finite"],
        "duplicate_rows": c["duplicate_bars"]["duplicate_rows"],
        "duplicated_keys": c["duplicate_bars"]["duplicated_keys"],
        "rows_out_of_order": c["monotonic_timestamps"]["rows_out_of_order"],
        "rows_misaligned": c["calendar_alignment"]["rows_misaligned"],
        **{k: c["completeness"].get(k, 0) for k in ("expected", "present", "missing", "gap_windows")},
        "returns": c["price_spikes"]["returns"],
        "spikes": c["price_spikes"]["spikes"],
        "scale_breaks": c["price_scale"]["scale_breaks"],
        "stale_runs": c["stale_prices"]["stale_runs"],
        "stale_bars": c["stale_prices"]["stale_bars"],
    }


def run_project(path: Path, n_sessions: int) -> dict:
    from tradepulse_assets.quality import gates
    from tradepulse_assets.quality.session_grid import PreparedBars

    gates.schema(PreparedBars(pl.read_parquet(path, n_rows=10)), gates.DEFAULT_CONFIG)  # pandera's import
    expected_frame(n_sessions)  # the calendar, built outside the timing as for the peers
    file_mode = timed(lambda: project_counts(pl.read_parquet(path), n_sessions))
    frame = pl.read_parquet(path)
    return {"file": file_mode, "memory": timed(project_counts, frame, n_sessions)}


def run_polars(path: Path, n_sessions: int) -> dict:
    from peers_gates import polars_counts

    expected = expected_frame(n_sessions)
    file_mode = timed(polars_counts, pl.scan_parquet(path), expected, SPIKE_Z, STALE_MIN)
    frame = pl.read_parquet(path)
    return {"file": file_mode, "memory": timed(polars_counts, frame.lazy(), expected, SPIKE_Z, STALE_MIN)}


def run_duckdb(path: Path, n_sessions: int) -> dict:
    from peers_gates import duckdb_connect, duckdb_counts, duckdb_load

    expected = expected_frame(n_sessions)
    con = duckdb_connect()

    def from_file():
        duckdb_load(con, str(path), expected)
        return duckdb_counts(con, SPIKE_Z, STALE_MIN)

    file_mode = timed(from_file)
    return {"file": file_mode, "memory": timed(duckdb_counts, con, SPIKE_Z, STALE_MIN)}


SIDES = {"project": run_project, "duckdb": run_duckdb, "polars": run_polars}
PEERS = ("duckdb", "polars")
MODES = ("file", "memory")
#: Issue #14: the gate suite on 10 M bars at least this many times as fast as each peer.
TARGETS = {"duckdb": 2.0, "polars": 1.5}


def child(side: str, path: Path, n_sessions: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # peers_gates beside this file
    out = SIDES[side](path, n_sessions)
    result = {mode: {"counts": {k: int(counts[k]) for k in COMPARED}, "wall": wall, "cpu": cpu}
              for mode, (counts, wall, cpu) in out.items()}
    print(json.dumps({**result, "peak_mb": peak_rss_mb()}))


def run_child(side: str, path: Path, n_sessions: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", side, "--data", str(path), "--sessions", str(n_sessions)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(f"{side} side failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def disagreements(runs: dict[str, list[dict]]) -> list[str]:
    reference = runs["project"][0]["file"]["counts"]
    return [
        f"{side} {mode} round {i + 1}: {k} = {run[mode]['counts'][k]}, project {reference[k]}"
        for side, side_runs in runs.items()
        for i, run in enumerate(side_runs)
        for mode in MODES
        for k in COMPARED
        if run[mode]["counts"][k] != reference[k]
    ]


def median(runs: list[dict], mode: str, key: str) -> float:
    return statistics.median(run[mode][key] for run in runs)


def measure(n_sym: int, n_sessions: int, rounds: int, tmp: Path) -> tuple[dict, list[str]]:
    path = tmp / f"bars_{n_sym}.parquet"
    rows = generate(path, n_sym, n_sessions)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    load_start = load()
    for round_ in range(rounds):
        order = list(SIDES)[round_ % len(SIDES):] + list(SIDES)[: round_ % len(SIDES)]
        for side in order:
            runs[side].append(run_child(side, path, n_sessions))
    path.unlink()
    summary = {"rows": rows, "symbols": n_sym, "load": f"{load_start} .. {load()}", "sides": {},
               "counts": runs["project"][0]["file"]["counts"]}
    for side, side_runs in runs.items():
        summary["sides"][side] = {
            "peak_mb": max(run["peak_mb"] for run in side_runs),
            **{f"{mode}_{key}": median(side_runs, mode, key) for mode in MODES for key in ("wall", "cpu")},
        }
    return summary, disagreements(runs)


def print_size(summary: dict) -> None:
    sides = summary["sides"]
    print(f"\n{summary['rows']:,} bars ({summary['symbols']} symbols), load 1/5/15 {summary['load']}")
    columns = ("file s", "(cpu)", "x", "memory s", "(cpu)", "x", "peak RSS")
    print(f"{'side':<8} {columns[0]:>8} {columns[1]:>7} {columns[2]:>6}   {columns[3]:>8} {columns[4]:>7} "
          f"{columns[5]:>6}   {columns[6]:>9}")
    for side, m in sides.items():
        ratios = [m[f"{mode}_wall"] / sides["project"][f"{mode}_wall"] for mode in MODES]
        print(
            f"{side:<8} {m['file_wall']:8.2f} {m['file_cpu']:7.2f} {ratios[0]:6.2f}   "
            f"{m['memory_wall']:8.2f} {m['memory_cpu']:7.2f} {ratios[1]:6.2f}   {m['peak_mb']:6.0f} MB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="100,300,1000", help="comma-separated sizes (x 7 x 1440 bars)")
    parser.add_argument("--sessions", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=list(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.sessions)
        return 0
    print(f"bench-gates on {os.cpu_count()} cores, load {load()} at start; x = peer median / project median "
          f"(wall), medians of {args.rounds} interleaved rounds")
    failures, summaries = [], []
    with tempfile.TemporaryDirectory(prefix="bench_gates_") as tmp:
        for n_sym in (int(x) for x in args.symbols.split(",")):
            summary, wrong = measure(n_sym, args.sessions, args.rounds, Path(tmp))
            summaries.append(summary)
            failures += wrong
            print_size(summary)
    print(f"\nload at end {load()}")
    largest = summaries[-1]["sides"]
    for peer in PEERS:
        for mode in MODES:
            ratio = largest[peer][f"{mode}_wall"] / largest["project"][f"{mode}_wall"]
            verdict = "met" if ratio >= TARGETS[peer] else "MISSED"
            print(f"target (#14) project >= {TARGETS[peer]}x {peer}, {mode}, "
                  f"{summaries[-1]['rows']:,} bars: {ratio:.2f}x {verdict}")
    print("counts: " + ", ".join(f"{k}={v}" for k, v in summaries[-1]["counts"].items()))
    if failures:
        print("MISMATCH between sides:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("every side agrees on all 21 counts, both ways, every round and size")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
