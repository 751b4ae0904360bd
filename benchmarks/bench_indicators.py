"""Benchmark the indicator kernels against their peers, interleaved round by round in one run.

    .venv/bin/python benchmarks/bench_indicators.py [--quick] [--only kernels,universes,compile]

Our kernels run here (.venv) with 1 and with 2 numba threads; the peers (MFDFA, nolds,
GraphRicciCurvature with proc=1, a vectorised SciPy Hilbert pipeline) run in a server process in
.venv-peers (benchmarks/peers_indicators.py; they pin old numpy/scipy). Every round runs ours at 1
thread, ours at 2 threads and the peer on the same input, in a rotating order, so load on the shared
machine hits all three alike; medians over the rounds are reported with the load average at the time.

Sections: kernels over a sweep of sizes (single series 1e3..1e6 points, batches of short windows,
correlation graphs of 50..5,000 nodes, Kuramoto 500 symbols), session features on the simulator's
realistic XNYS universe (100, 500, 1,000, 3,000 symbols; each in a fresh process for its peak memory),
and the cold compile of a session's kernels. Agreement with the peer is checked at every size: exit 1
if any check fails, 2 if .venv-peers is missing (make peers). Timings are printed, never asserted.
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER_PY = ROOT / ".venv-peers" / "bin" / "python"
SESSION = dt.date(2026, 3, 10)


def load() -> str:
    return "{:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


# ------------------------------------------------------------------------------------------- peers
class Peer:
    """The peer server in .venv-peers: one JSON job per line, one JSON answer per line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([str(PEER_PY), str(ROOT / "benchmarks" / "peers_indicators.py"), "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def run(self, job: dict) -> tuple[float, np.ndarray]:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"peer {job['task']}: {reply['error']}")
        return reply["seconds"], np.load(job["out"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ----------------------------------------------------------------------------------------- kernels
MIN_SAMPLE = 0.2  # seconds: a fast call is repeated until one timing sample lasts this long (either side)
MAX_REPS = 2000


@dataclass
class Case:
    kernel: str
    size: str
    ours: object  # callable returning the values compared with the peer
    job: dict
    tolerance: float
    target: float | None
    rounds: int
    times: dict = field(default_factory=lambda: {"1": [], "2": [], "peer": []})
    diff: float = float("nan")
    load: str = ""


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _reps(seconds: float) -> int:
    return max(1, min(MAX_REPS, int(np.ceil(MIN_SAMPLE / max(seconds, 1e-7)))))


def run_case(case: Case, peer: Peer) -> None:
    """Rounds of (ours 1 thread, ours 2 threads, peer) in rotating order; each sample is the mean of
    enough back-to-back calls to last MIN_SAMPLE, so a millisecond call is not one scheduler tick."""
    import numba

    threads = numba.get_num_threads()
    case.ours()  # first call: cache load (compile is measured in its own section)
    ours_reps = _reps(_timed(case.ours)[0])
    peer_reps = _reps(peer.run(case.job)[0])
    peer_out = None
    ours_out = None
    for r in range(case.rounds):
        order = ["1", "2", "peer"][r % 3:] + ["1", "2", "peer"][:r % 3]
        for who in order:
            if who == "peer":
                seconds, peer_out = peer.run({**case.job, "repeat": peer_reps})
                seconds /= peer_reps
            else:
                numba.set_num_threads(min(int(who), threads))
                t0 = time.perf_counter()
                for _ in range(ours_reps):
                    ours_out = case.ours()
                seconds = (time.perf_counter() - t0) / ours_reps
                numba.set_num_threads(threads)
            case.times[who].append(seconds)
    case.diff = float(np.max(np.abs(np.asarray(ours_out, dtype=float) - peer_out))) if peer_out.size else 0.0
    case.load = load()


def _fgn_like(rng, n):
    return rng.standard_normal(n)


def factor_returns(rng, n_obs: int, n_sym: int) -> np.ndarray:
    """Market + 11 sectors + industries of 25 + noise: the correlation shape of the realistic universe."""
    sector = np.arange(n_sym) % 11
    industry = (np.arange(n_sym) // 275) * 11 + sector
    m = rng.standard_normal((n_obs, 1))
    s = rng.standard_normal((n_obs, 11))
    i = rng.standard_normal((n_obs, int(industry.max()) + 1))
    return 0.5 * m + 0.3 * s[:, sector] + 0.35 * i[:, industry] + 0.7 * rng.standard_normal((n_obs, n_sym))


def kernel_cases(tmp: Path, quick: bool) -> list[Case]:
    from tradepulse_assets.indicators import (
        correlation_graph,
        default_dfa_scales,
        default_rs_nvals,
        dfa,
        forman_ricci,
        kuramoto_order,
        ollivier_ricci,
        rescaled_range,
    )

    rng = np.random.default_rng(20260302)
    cases: list[Case] = []

    def save(name: str, **arrays) -> Path:
        d = tmp / name
        d.mkdir(parents=True, exist_ok=True)
        for k, v in arrays.items():
            np.save(d / f"{k}.npy", v)
        return d

    lengths = [1_000, 10_000, 100_000] + ([] if quick else [1_000_000])
    for n in lengths:
        x = _fgn_like(rng, n)
        sc, nv = default_dfa_scales(n), default_rs_nvals(n)
        d = save(f"long{n}", x=x, scales=sc, nvals=nv)
        rounds = 5 if n < 1_000_000 else 3
        cases.append(Case("DFA vs MFDFA", f"1 x {n:,}", lambda x=x, sc=sc: [dfa(x, sc)[0]],
                          {"task": "dfa", "dir": str(d), "out": str(d / "peer_dfa.npy")}, 1e-12, 5.0, rounds))
        cases.append(Case("R/S vs nolds", f"1 x {n:,}", lambda x=x, nv=nv: [rescaled_range(x, nv)[0]],
                          {"task": "rs", "dir": str(d), "out": str(d / "peer_rs.npy")}, 1e-9, 5.0, rounds))
    n_win = 100 if quick else 500
    batch = rng.standard_normal((n_win, 1024))
    sc, nv = default_dfa_scales(1024), default_rs_nvals(1024)
    d = save("batch", x=batch, scales=sc, nvals=nv)
    cases.append(Case("DFA vs MFDFA", f"{n_win} x 1,024", lambda: dfa(batch, sc)[0],
                      {"task": "dfa", "dir": str(d), "out": str(d / "peer_dfa.npy")}, 1e-12, 50.0, 3))
    cases.append(Case("R/S vs nolds", f"{n_win} x 1,024", lambda: rescaled_range(batch, nv)[0],
                      {"task": "rs", "dir": str(d), "out": str(d / "peer_rs.npy")}, 1e-9, 50.0, 3))

    # the features' graphs (threshold 0.5, 5 neighbours) and dense neighbourhoods without the cap
    graphs = [(50, 0.5, 5), (50, 0.0, None), (100, 0.2, None), (200, 0.3, None), (200, 0.5, 5), (1000, 0.5, 5)]
    graphs += [] if quick else [(2000, 0.5, 5), (5000, 0.5, 5)]
    for n_nodes, threshold, k in graphs:
        g = correlation_graph(factor_returns(rng, 127, n_nodes), threshold, k)
        d = save(f"graph{n_nodes}_{k}", source=g.source, target=g.target, weight=g.weight, n_nodes=np.array(n_nodes))
        degree = 2.0 * g.source.size / n_nodes
        label = f"{n_nodes} nodes, {g.source.size:,} edges" + (f" (no cap, deg {degree:.0f})" if k is None else "")
        rounds = 3 if n_nodes <= 1000 else 2
        cases.append(Case("Ollivier vs GRC proc=1", label, lambda g=g: ollivier_ricci(g, 0.5),
                          {"task": "ollivier", "dir": str(d), "out": str(d / "peer_oll.npy"), "alpha": 0.5,
                           "proc": 1}, 1e-9, 5.0, rounds))
        cases.append(Case("Forman vs GRC 1d", label, lambda g=g: forman_ricci(g),
                          {"task": "forman", "dir": str(d), "out": str(d / "peer_forman.npy")}, 1e-9, None, rounds))

    n_min = 2_000 if quick else 10_000
    close = 100.0 * np.exp(np.cumsum((rng.standard_normal((n_min, 1)) * 0.5 + rng.standard_normal((n_min, 500)))
                                     * 1e-3, axis=0))
    d = save("kuramoto", close=close)
    cases.append(Case("Kuramoto vs SciPy (vectorised)", f"500 x {n_min:,}", lambda: kuramoto_order(close, 64, 64).r,
                      {"task": "kuramoto", "dir": str(d), "out": str(d / "peer_kur.npy"), "window": 64, "step": 64},
                      1e-12, None, 5))
    return cases


def print_kernels(cases: list[Case]) -> list[str]:
    failures = []
    head = ("kernel", "size", "ours 1 thr s", "ours 2 thr s", "peer s", "x (1 thr)", "x (2 thr)", "max |diff|",
            "target", "load 1/5/15")
    widths = (30, 38, 12, 12, 10, 9, 9, 10, 18, 14)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for c in cases:
        m1, m2, mp = (statistics.median(c.times[k]) for k in ("1", "2", "peer"))
        ok = c.diff <= c.tolerance
        if not ok:
            failures.append(f"{c.kernel} {c.size}: max |diff| {c.diff:.2e} > {c.tolerance:g}")
        verdict = "-"
        if c.target is not None:
            met = min(mp / m1, mp / m2) >= c.target
            verdict = f">= {c.target:g}x: {'met' if met else 'MISSED'}"
        cells = (c.kernel, c.size, f"{m1:.4f}", f"{m2:.4f}", f"{mp:.4f}", f"{mp / m1:.1f}", f"{mp / m2:.1f}",
                 f"{c.diff:.1e}" + ("" if ok else " FAIL"), verdict, c.load)
        print("  ".join(str(x).ljust(w) for x, w in zip(cells, widths)), flush=True)
    return failures


# --------------------------------------------------------------------------------------- universes
def session_matrix(n_symbols: int):
    """Close matrix (minutes x symbols, NaN = no bar) of one realistic XNYS session."""
    from tradepulse_assets.feeds.simulator import simulate_session
    from tradepulse_assets.markets import calendar_for, load_registry

    market = load_registry().get("XNYS")
    bars = simulate_session(market, SESSION, 0, n_symbols, universe="realistic")
    minutes = calendar_for(market.market_id, market.calendar).minutes(SESSION)
    wide = bars.pivot(on="symbol", index="ts", values="close").sort("ts")
    symbols = sorted(wide.columns[1:])
    ts = wide["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
    grid = np.asarray(minutes).astype("datetime64[us]")
    close = np.full((grid.size, len(symbols)), np.nan)
    close[np.searchsorted(grid, ts)] = wide.select(symbols).to_numpy()
    return close, grid, symbols


def largest_distances(log_close: np.ndarray, p) -> tuple[int, int]:
    """Bytes of the ball distances of the session's largest window, and of a dense n x n for the same window."""
    from tradepulse_assets.indicators.kuramoto import window_starts
    from tradepulse_assets.indicators.ricci import _csr, graph_from_correlation, transport_distances

    best = (0, 0)
    for s in window_starts(log_close.shape[0], p.ricci_window, p.ricci_step):
        rets = np.diff(log_close[s:s + p.ricci_window], axis=0)
        keep = np.flatnonzero(np.isfinite(rets).all(axis=0) & (np.ptp(rets, axis=0) > 0))
        g = graph_from_correlation(np.corrcoef(rets[:, keep], rowvar=False), p.ricci_threshold, p.ricci_max_neighbours)
        best = max(best, (transport_distances(*_csr(g)).nbytes, 8 * keep.size ** 2))
    return best


def universe_child(n_symbols: int, out: Path) -> None:
    """One universe size in a fresh process: features twice (cache load, then warm), peak RSS, window 0 graph."""
    from tradepulse_assets.indicators import FeatureParams, compute_session_features
    from tradepulse_assets.indicators.features import forward_fill
    from tradepulse_assets.indicators.ricci import graph_from_correlation

    close, ts, symbols = session_matrix(n_symbols)
    first, _ = _timed(lambda: compute_session_features(close, ts, symbols))
    warm, feats = _timed(lambda: compute_session_features(close, ts, symbols))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the checks below allocate
    p = FeatureParams()
    lc = np.log(forward_fill(close))
    rets = np.diff(lc[: p.ricci_window], axis=0)
    keep = np.flatnonzero(np.isfinite(rets).all(axis=0) & (np.ptp(rets, axis=0) > 0))
    g = graph_from_correlation(np.corrcoef(rets[:, keep], rowvar=False), p.ricci_threshold, p.ricci_max_neighbours)
    ball_bytes, dense_bytes = largest_distances(lc, p)
    edges0 = feats.ricci_edges.filter(feats.ricci_edges["window_end"] == feats.ricci_edges["window_end"].min())
    np.save(out / "source.npy", g.source)
    np.save(out / "target.npy", g.target)
    np.save(out / "weight.npy", g.weight)
    np.save(out / "n_nodes.npy", np.array(g.n_nodes))
    np.save(out / "ours_oll.npy", edges0["ollivier"].to_numpy())
    (out / "result.json").write_text(json.dumps({
        "first": first, "warm": warm, "peak_mb": peak_mb,
        "edges": feats.ricci["n_edges"].to_list(), "load": load(), "ball_mb": ball_bytes / 2**20,
        "dense_mb": dense_bytes / 2**20,
    }))


def run_universes(tmp: Path, quick: bool, peer: Peer) -> list[str]:
    sizes = [100, 500] if quick else [100, 500, 1000, 3000]
    targets = {500: 5.0, 3000: 60.0}
    failures = []
    print("\nsession features, one realistic XNYS session (390 minutes); 'first' = first call in a fresh process "
          "(numba cache load), 'warm' = second call; peak = the process's max RSS; dist MB = the largest window's "
          "ball distances (dense n x n in brackets)")
    head = ("symbols", "threads", "first s", "warm s", "peak MB", "dist MB", "edges/window", "Ollivier w0 vs GRC",
            "target", "load 1/5/15")
    widths = (8, 8, 8, 8, 8, 14, 30, 19, 22, 14)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)), flush=True)
    for n in sizes:
        for threads in (1, 2):
            d = tmp / f"universe{n}_{threads}"
            d.mkdir()
            env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
            subprocess.run([sys.executable, __file__, "--universe-child", str(n), str(d)], env=env, check=True,
                           cwd=ROOT)
            res = json.loads((d / "result.json").read_text())
            agree = "-"
            if threads == 1:
                _, peer_oll = peer.run({"task": "ollivier", "dir": str(d), "out": str(d / "peer.npy"), "alpha": 0.5,
                                        "proc": 1})
                diff = float(np.max(np.abs(np.load(d / "ours_oll.npy") - peer_oll)))
                agree = f"{diff:.1e}" + ("" if diff <= 1e-9 else " FAIL")
                if diff > 1e-9:
                    failures.append(f"universe {n}: Ollivier window 0 differs from GRC by {diff:.2e}")
            verdict = "-"
            if n in targets:
                ok = res["warm"] <= targets[n] and (n != 3000 or res["peak_mb"] <= 4096)
                verdict = f"<= {targets[n]:g} s" + (", 4 GB" if n == 3000 else "") + (": met" if ok else ": MISSED")
            edges = ",".join(str(e) for e in res["edges"])
            cells = (n, threads, f"{res['first']:.2f}", f"{res['warm']:.2f}", f"{res['peak_mb']:.0f}",
                     f"{res['ball_mb']:.1f} ({res['dense_mb']:.0f})", edges, agree, verdict, res["load"])
            print("  ".join(str(x).ljust(w) for x, w in zip(cells, widths)), flush=True)
    return failures


# ----------------------------------------------------------------------------------------- compile
INDICATOR_MODULES = ("_least_squares", "hurst", "kuramoto", "ricci", "transport")


def compiled_here() -> int:
    """Kernel signatures this process compiled instead of loading from the cache."""
    import importlib

    import numba

    total = 0
    for name in INDICATOR_MODULES:
        mod = importlib.import_module(f"tradepulse_assets.indicators.{name}")
        for obj in vars(mod).values():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                total += sum(obj.stats.cache_misses.values())
    return total


def compile_child(n_symbols: int) -> None:
    from tradepulse_assets.indicators import compute_session_features

    close, ts, symbols = session_matrix(n_symbols)
    c0 = time.process_time()
    first, _ = _timed(lambda: compute_session_features(close, ts, symbols))
    cpu = time.process_time() - c0
    c1 = time.process_time()
    warm, _ = _timed(lambda: compute_session_features(close, ts, symbols))
    warm_cpu = time.process_time() - c1
    print(json.dumps({"first": first, "cpu": cpu, "warm": warm, "warm_cpu": warm_cpu, "compiled": compiled_here(),
                      "load": load()}))


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_compile(tmp: Path) -> None:
    print("\ncompile: a session's features in a fresh process (NUMBA_NUM_THREADS=2); first call minus a warm call, "
          "wall and CPU; 'kernels compiled' = signatures compiled in that process instead of loaded from the cache")
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}

    def child(label: str, cache: Path, n_symbols: int) -> None:
        out = subprocess.run([sys.executable, __file__, "--compile-child", str(n_symbols)],
                             env={**env, "NUMBA_CACHE_DIR": str(cache)}, check=True, cwd=ROOT, capture_output=True,
                             text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"  {label:34s} {n_symbols:5d} symbols: {r['first'] - r['warm']:6.1f} s wall, "
              f"{r['cpu'] - r['warm_cpu']:5.1f} s CPU, kernels compiled {r['compiled']:3d}  (warm call "
              f"{r['warm']:.3f} s)  load {r['load']}", flush=True)

    child("cold (empty cache)", tmp / "cache_cold", 24)
    installed = tmp / "cache_installed"
    c0, t0 = _child_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "tradepulse_assets.indicators.warmup"],
                   env={**env, "NUMBA_CACHE_DIR": str(installed)}, check=True, cwd=ROOT, capture_output=True)
    print(f"  make install's warm-up (empty cache): {time.perf_counter() - t0:.1f} s wall, {_child_cpu() - c0:.1f} s CPU"
          f"  load {load()}", flush=True)
    for n in (24, 500):
        child("after make install's warm-up", installed, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sweep for iterating (no 1e6 series, graphs to "
                    "1,000 nodes, universes 100 and 500)")
    ap.add_argument("--only", default="kernels,universes,compile", help="comma-separated sections")
    ap.add_argument("--universe-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--compile-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.universe_child:
        universe_child(int(args.universe_child[0]), Path(args.universe_child[1]))
        return 0
    if args.compile_child:
        compile_child(args.compile_child)
        return 0
    if not PEER_PY.exists():
        print(f"peer environment missing: {PEER_PY}\n  create it: make peers", file=sys.stderr)
        return 2
    sections = set(args.only.split(","))
    failures: list[str] = []
    print(f"bench-indicators {'--quick ' if args.quick else ''}on {os.cpu_count()} cores, load {load()} at start")
    with tempfile.TemporaryDirectory(prefix="bench_indicators_") as tmp_name:
        tmp = Path(tmp_name)
        peer = Peer()
        try:
            if "kernels" in sections:
                cases = kernel_cases(tmp, args.quick)
                for case in cases:
                    run_case(case, peer)
                print()
                failures += print_kernels(cases)
            if "universes" in sections:
                failures += run_universes(tmp, args.quick, peer)
        finally:
            peer.close()
        if "compile" in sections:
            run_compile(tmp)
    print(f"\nload at end {load()}; ratios are peer median / ours median over the same interleaved rounds")
    if failures:
        print("\nAGREEMENT FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("all agreement checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
