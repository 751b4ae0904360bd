"""Compile every indicator kernel into numba's on-disk cache, once, ahead of the first run.

Why: a cold compile of all kernels took 161 s in the first Dagster run after install (1.4-18 s each on
a loaded machine), inside a run with an SLA. ``make install`` runs ``python -m
tradepulse_assets.indicators.warmup``: it computes the features of a small synthetic session through
the same public calls the assets make (so the cached signatures are the ones production uses), once
with every kernel forced to its serial entry point and once to its parallel one, plus the stand-alone
API (1-D Hurst, all-pairs shortest paths, W1). Later processes load the kernels from the cache.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ._jit import forced_mode, refresh_stale_cache
from .features import compute_session_features
from .hurst import hurst_dfa, hurst_rs
from .ricci import correlation_graph, shortest_paths
from .transport import wasserstein1

N_MINUTES = 390
N_SYMBOLS = 40


def synthetic_session(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A one-factor session with a late-listed symbol and missing bars (every code path of the features)."""
    rng = np.random.default_rng(seed)
    returns = 1e-3 * (0.7 * rng.standard_normal((N_MINUTES, 1)) + rng.standard_normal((N_MINUTES, N_SYMBOLS)))
    close = 100.0 * np.exp(np.cumsum(returns, axis=0))
    close[:200, 0] = np.nan  # first price at minute 200
    close[rng.random(close.shape) < 0.02] = np.nan  # missing bars
    ts = np.datetime64("2026-03-10T14:30", "us") + np.arange(N_MINUTES) * np.timedelta64(60_000_000, "us")
    return close, ts, [f"S{i:02d}" for i in range(N_SYMBOLS)]


def warm_up() -> float:
    """Compile (or load) every kernel; returns the seconds it took."""
    t0 = time.perf_counter()
    refresh_stale_cache()
    close, ts, symbols = synthetic_session()
    x = np.random.default_rng(1).standard_normal(1024)
    for mode in ("serial", "parallel"):
        with forced_mode(mode):
            compute_session_features(close, ts, symbols)
            hurst_dfa(x)
            hurst_rs(x)
            hurst_dfa(x.reshape(4, 256), [8, 16, 32])
            shortest_paths(correlation_graph(np.random.default_rng(2).standard_normal((60, 10))))
    wasserstein1([0.5, 0.5], [0.25, 0.75], np.array([[0.0, 1.0], [1.0, 0.0]]))
    return time.perf_counter() - t0


def main() -> int:
    seconds = warm_up()
    print(f"indicator kernels compiled and cached in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
