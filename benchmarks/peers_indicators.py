"""Peer side of bench_indicators.py: MFDFA, nolds, GraphRicciCurvature and vectorised SciPy Kuramoto.

Runs inside .venv-peers (the peers pin old numpy/scipy) as a small server, so the benchmark can interleave
project and peer round by round in one run:

    .venv-peers/bin/python benchmarks/peers_indicators.py --serve

Each stdin line is a JSON job ``{"task": ..., "dir": ..., "out": ..., ...}``; the peer loads its inputs
from ``dir`` (.npy, untimed), runs the task ``repeat`` times back to back (default 1; timed together), saves
the result to ``out`` (.npy) and answers one JSON line ``{"seconds": ...}`` (the total). Imports nothing from tradepulse_assets (not installed here).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def _load_graph(d: Path):
    import networkx as nx

    s, t, w = np.load(d / "source.npy"), np.load(d / "target.npy"), np.load(d / "weight.npy")
    g = nx.Graph()
    g.add_nodes_from(range(int(np.load(d / "n_nodes.npy"))))
    g.add_weighted_edges_from(zip(s.tolist(), t.tolist(), w.tolist()))
    return g, s.tolist(), t.tolist()


def prepare(job: dict):
    """Load the inputs (untimed) and return the timed callable."""
    d = Path(job["dir"])
    task = job["task"]
    if task == "dfa":
        from MFDFA import MFDFA

        x = np.atleast_2d(np.load(d / "x.npy"))
        scales = np.load(d / "scales.npy")

        def run():
            h = np.empty(x.shape[0])
            for i in range(x.shape[0]):
                lag, f = MFDFA(x[i], lag=scales, q=2, order=1)
                h[i] = np.polyfit(np.log(lag), np.log(f[:, 0]), 1)[0]
            return h

        return run
    if task == "rs":
        import nolds

        x = np.atleast_2d(np.load(d / "x.npy"))
        nvals = np.load(d / "nvals.npy").tolist()
        return lambda: np.array([nolds.hurst_rs(row, nvals=nvals, fit="poly", corrected=True) for row in x])
    if task == "ollivier":
        from GraphRicciCurvature.OllivierRicci import OllivierRicci

        g, s, t = _load_graph(d)

        def run():
            orc = OllivierRicci(g, weight="weight", alpha=job["alpha"], method="OTD", exp_power=0,
                                proc=job.get("proc", 1), verbose="ERROR")
            orc.compute_ricci_curvature()
            return np.array([orc.G[a][b]["ricciCurvature"] for a, b in zip(s, t)])

        return run
    if task == "forman":
        from GraphRicciCurvature.FormanRicci import FormanRicci

        g, s, t = _load_graph(d)

        def run():
            fr = FormanRicci(g, weight="weight", method="1d")
            fr.compute_ricci_curvature()
            return np.array([fr.G[a][b]["formanCurvature"] for a, b in zip(s, t)])

        return run
    if task == "kuramoto":
        import scipy.signal

        close = np.load(d / "close.npy")
        w, step = job["window"], job["step"]

        def run():  # the same definition, vectorised over windows: (windows, returns, symbols)
            lr = np.diff(np.log(close), axis=0)
            starts = np.arange(0, close.shape[0] - w + 1, step)
            win = np.lib.stride_tricks.sliding_window_view(lr, w - 1, axis=0)[starts]  # (k, symbols, w-1)
            theta = np.angle(scipy.signal.hilbert(scipy.signal.detrend(win, axis=-1), axis=-1))
            return np.mean(np.abs(np.mean(np.exp(1j * theta), axis=1)), axis=-1)

        return run
    raise ValueError(f"unknown task {task!r}")


def serve() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            run = prepare(job)
            t0 = time.perf_counter()
            for _ in range(int(job.get("repeat", 1))):
                out = run()
            seconds = time.perf_counter() - t0
            np.save(job["out"], out)
            reply = {"seconds": seconds}
        except Exception as exc:  # reported to the benchmark, which fails the run
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        sys.exit(__doc__)
    serve()
