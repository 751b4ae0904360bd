"""Independent references for the indicator tests: exact fGn, plain NumPy DFA and R/S, an LP for W1.

Written from the textbook definitions with NumPy/SciPy only, never calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog


def fgn_davies_harte(n: int, hurst: float, rng: np.random.Generator) -> np.ndarray:
    """Exact fractional Gaussian noise (unit variance) by circulant embedding (Davies-Harte)."""
    k = np.arange(n + 1, dtype=np.float64)
    gamma = 0.5 * (np.abs(k + 1) ** (2 * hurst) - 2 * np.abs(k) ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))
    row = np.concatenate([gamma, gamma[-2:0:-1]])  # first row of the 2n circulant
    lam = np.fft.fft(row).real
    if lam.min() < -1e-10:
        raise AssertionError(f"circulant embedding not non-negative for H={hurst}")
    lam = np.clip(lam, 0.0, None)
    m = row.size
    eps = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    y = np.fft.fft(np.sqrt(lam / m) * eps)
    return y.real[:n]


def dfa_reference(x: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """DFA-1 fluctuation F(s): profile, forward and backward segments, np.polyfit per segment."""
    y = np.cumsum(x - x.mean())
    n = y.size
    out = []
    for s in scales:
        variances = []
        for offset in (0, n % s):
            for v in range((n - n % s) // s):
                seg = y[offset + v * s: offset + (v + 1) * s]
                t = np.arange(1, s + 1, dtype=np.float64)
                coef = np.polyfit(t, seg, 1)
                variances.append(np.var(seg - np.polyval(coef, t)))
        out.append(math.sqrt(np.mean(variances)))
    return np.array(out)


def expected_rs_reference(n: int) -> float:
    """Anis-Lloyd (1976) expected R/S of white noise with Peters' (1994) (n - 1/2)/n factor."""
    front = (n - 0.5) / n
    i = np.arange(1, n)
    back = np.sum(np.sqrt((n - i) / i))
    middle = math.exp(math.lgamma((n - 1) / 2) - math.lgamma(n / 2)) / math.sqrt(math.pi) if n <= 340 \
        else 1.0 / math.sqrt(n * math.pi / 2)
    return front * middle * back


def rs_hurst_reference(x: np.ndarray, nvals: np.ndarray) -> tuple[float, np.ndarray]:
    """Anis-Lloyd corrected R/S Hurst exponent, plain NumPy, and the (R/S)_n values."""
    rs = []
    for n in nvals:
        m = x.size // n
        seqs = x[: m * n].reshape(m, n)
        dev = np.cumsum(seqs - seqs.mean(axis=1, keepdims=True), axis=1)
        r = dev.max(axis=1) - dev.min(axis=1)
        s = seqs.std(axis=1, ddof=1)
        ok = seqs.max(axis=1) > seqs.min(axis=1)  # a constant subseries has R = S = 0: R/S undefined
        rs.append(np.mean(r[ok] / s[ok]) if ok.any() else np.nan)
    rs = np.array(rs)
    y = np.log(rs) - np.log([expected_rs_reference(int(n)) for n in nvals])
    slope = np.polyfit(np.log(nvals), y, 1)[0]
    return slope + 0.5, rs


def knn_threshold_graph_edges(rho: np.ndarray, threshold: float, k: int) -> set[tuple[int, int]]:
    """MST of sqrt(2(1 - rho)) (networkx) plus pairs above ``threshold`` among either end's k most correlated."""
    import networkx as nx

    n = rho.shape[0]
    dist = np.sqrt(np.clip(2.0 * (1.0 - rho), 0.0, None))
    full = nx.Graph()
    for i in range(n):
        for j in range(i + 1, n):
            full.add_edge(i, j, weight=dist[i, j])
    edges = {(min(a, b), max(a, b)) for a, b in nx.minimum_spanning_edges(full, algorithm="kruskal", data=False)}
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (-rho[i, j], j))[:k]
        edges |= {(min(i, j), max(i, j)) for j in others if rho[i, j] > threshold}
    return edges


def w1_linprog(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
    """Transport LP: min <P, C> s.t. P 1 = a, P^T 1 = b, P >= 0 (HiGHS)."""
    m, n = cost.shape
    rows = np.zeros((m + n, m * n))
    for i in range(m):
        rows[i, i * n:(i + 1) * n] = 1.0
    for j in range(n):
        rows[m + j, j::n] = 1.0
    res = linprog(cost.ravel(), A_eq=rows, b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return float(res.fun)
