"""Peer side of bench_indicators.py: runs MFDFA, nolds, GraphRicciCurvature and the SciPy Hilbert
pipeline on the inputs written by the benchmark, inside .venv-peers (they pin old numpy/scipy).

Usage: .venv-peers/bin/python benchmarks/peers_indicators.py DIR [--repeats N]
Reads DIR/*.npy and DIR/params.json, writes DIR/peer_<name>.npy and DIR/peer_times.json.
Imports nothing from tradepulse_assets (it is not installed in the peer venv).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np


def timed(fn, repeats: int):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def run_dfa(d: Path, p: dict):
    from MFDFA import MFDFA

    x = np.load(d / "hurst_windows.npy")
    scales = np.load(d / "dfa_scales.npy")

    def go():
        fl = np.empty((x.shape[0], scales.size))
        h = np.empty(x.shape[0])
        for i in range(x.shape[0]):
            lag, f = MFDFA(x[i], lag=scales, q=2, order=1)
            fl[i] = f[:, 0]
            h[i] = np.polyfit(np.log(lag), np.log(f[:, 0]), 1)[0]
        return h, fl

    (h, fl), times = timed(go, p["repeats_slow"])
    np.save(d / "peer_dfa_h.npy", h)
    np.save(d / "peer_dfa_f.npy", fl)
    return times


def run_rs(d: Path, p: dict):
    import nolds

    x = np.load(d / "hurst_windows.npy")
    nvals = np.load(d / "rs_nvals.npy").tolist()

    def go():
        return np.array([nolds.hurst_rs(x[i], nvals=nvals, fit="poly", corrected=True) for i in range(x.shape[0])])

    h, times = timed(go, p["repeats_slow"])
    np.save(d / "peer_rs_h.npy", h)
    return times


def _graph(d: Path):
    import networkx as nx

    s, t, w = np.load(d / "ricci_source.npy"), np.load(d / "ricci_target.npy"), np.load(d / "ricci_weight.npy")
    n = int(json.loads((d / "params.json").read_text())["ricci_nodes"])
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_weighted_edges_from(zip(s.tolist(), t.tolist(), w.tolist()))
    return G, s, t


def run_ollivier(d: Path, p: dict, proc: int):
    from GraphRicciCurvature.OllivierRicci import OllivierRicci

    G, s, t = _graph(d)

    def go():
        orc = OllivierRicci(G, weight="weight", alpha=p["ricci_alpha"], method="OTD", exp_power=0, proc=proc,
                            verbose="ERROR")
        orc.compute_ricci_curvature()
        return np.array([orc.G[a][b]["ricciCurvature"] for a, b in zip(s.tolist(), t.tolist())])

    k, times = timed(go, p["repeats_slow"])
    np.save(d / f"peer_ollivier_proc{proc}.npy", k)
    return times


def run_forman(d: Path, p: dict):
    from GraphRicciCurvature.FormanRicci import FormanRicci

    G, s, t = _graph(d)

    def go():
        fr = FormanRicci(G, weight="weight", method="1d")
        fr.compute_ricci_curvature()
        return np.array([fr.G[a][b]["formanCurvature"] for a, b in zip(s.tolist(), t.tolist())])

    f, times = timed(go, p["repeats_slow"])
    np.save(d / "peer_forman.npy", f)
    return times


def run_kuramoto(d: Path, p: dict):
    import scipy.signal

    close = np.load(d / "kuramoto_close.npy")
    w, step = p["kuramoto_window"], p["kuramoto_step"]

    def go():
        lr = np.diff(np.log(close), axis=0)
        out = []
        for s in range(0, close.shape[0] - w + 1, step):
            th = np.angle(scipy.signal.hilbert(scipy.signal.detrend(lr[s:s + w - 1], axis=0), axis=0))
            out.append(np.mean(np.abs(np.mean(np.exp(1j * th), axis=1))))
        return np.array(out)

    r, times = timed(go, p["repeats_fast"])
    np.save(d / "peer_kuramoto.npy", r)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--only", default="dfa,rs,ollivier1,ollivier2,forman,kuramoto")
    args = ap.parse_args()
    p = json.loads((args.dir / "params.json").read_text())
    jobs = {
        "dfa": lambda: run_dfa(args.dir, p),
        "rs": lambda: run_rs(args.dir, p),
        "ollivier1": lambda: run_ollivier(args.dir, p, 1),
        "ollivier2": lambda: run_ollivier(args.dir, p, 2),
        "forman": lambda: run_forman(args.dir, p),
        "kuramoto": lambda: run_kuramoto(args.dir, p),
    }
    result = {}
    for name in args.only.split(","):
        times = jobs[name]()
        result[name] = {"times": times, "median": statistics.median(times)}
        print(f"peer {name}: median {statistics.median(times):.4f} s over {len(times)}", flush=True)
    tmp = args.dir / "peer_times.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, args.dir / "peer_times.json")


if __name__ == "__main__":
    main()
