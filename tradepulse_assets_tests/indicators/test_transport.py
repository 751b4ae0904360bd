"""Transportation simplex (``transport.emd``) against an LP (HiGHS), on the paths the Ricci kernel does
not reach by itself: Bland's anti-cycling rule from the first pivot, degenerate and tied problems,
problems long enough to re-derive the potentials mid-solve, and one workspace reused across sizes.

Degenerate problems are the ones that stall or cycle a simplex: uniform masses (assignment-like,
every basis has zero-flow cells), integer and constant costs (ties in the start and in pricing),
zero masses, a single row or column. Those are also what Ollivier-Ricci produces (a few distinct
masses, shortest-path costs with ties).
"""

from __future__ import annotations

import numpy as np
import pytest

from tradepulse_assets.indicators.transport import (
    REFRESH_EVERY,
    emd,
    emd_with,
    new_workspace,
)

from .references import w1_linprog


def _problem(rng: np.random.Generator, m: int, n: int, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if kind == "uniform":  # assignment-like: maximal degeneracy
        a, b = np.ones(m), np.ones(n)
    elif kind == "zeros":  # some rows and columns carry no mass
        a, b = rng.random(m) * (rng.random(m) < 0.6), rng.random(n) * (rng.random(n) < 0.6)
        a[0], b[0] = 1.0, 1.0
    else:
        a, b = rng.random(m), rng.random(n)
    a, b = a / a.sum(), b / b.sum()
    if kind in ("uniform", "ties"):
        cost = rng.integers(0, 3, (m, n)).astype(float)
    elif kind == "constant":
        cost = np.full((m, n), 0.7)
    else:
        cost = rng.random((m, n))
    return a, b, cost


KINDS = ["random", "uniform", "ties", "constant", "zeros"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bland_after", [0, 3, 2000])
def test_emd_matches_lp_on_degenerate_problems_for_every_entering_rule(kind, bland_after):
    """bland_after=0: Bland's rule only (the anti-cycling fallback); 3: switch mid-solve; 2000: Dantzig."""
    rng = np.random.default_rng(100 * KINDS.index(kind) + bland_after)
    for _ in range(25):
        m, n = (int(v) for v in rng.integers(1, 12, 2))
        a, b, cost = _problem(rng, m, n, kind)
        assert emd(a, b, cost, bland_after) == pytest.approx(w1_linprog(a, b, cost), abs=1e-12)


@pytest.mark.parametrize("m,n", [(1, 1), (1, 7), (7, 1), (2, 2)])
def test_emd_single_line_and_tiny_problems(m, n):
    rng = np.random.default_rng(m * 10 + n)
    a, b, cost = _problem(rng, m, n, "random")
    expected = w1_linprog(a, b, cost)
    assert emd(a, b, cost) == pytest.approx(expected, abs=1e-12)
    assert emd(a, b, cost, 0) == pytest.approx(expected, abs=1e-12)


def test_emd_on_problems_long_enough_to_refresh_the_potentials():
    """Large dense problems take more than REFRESH_EVERY pivots: the mid-solve refresh must not disturb them."""
    rng = np.random.default_rng(21)
    for kind in ("random", "ties", "uniform"):
        a, b, cost = _problem(rng, 60, 55, kind)
        assert 60 + 55 > REFRESH_EVERY
        assert emd(a, b, cost) == pytest.approx(w1_linprog(a, b, cost), abs=1e-11)


def test_emd_with_signed_costs_of_every_magnitude_matches_lp():
    """The start and the pricing compare cells through integer order keys of the float costs: negative,
    zero and positive costs from 1e-6 to 1e6 in one matrix, tied negative integers, and rows wider than
    a few index bits must all order as the floats do."""
    rng = np.random.default_rng(26)
    for m, n in ((7, 9), (12, 3), (5, 140), (140, 6)):
        a, b, _ = _problem(rng, m, n, "random")
        signed = rng.choice([-1.0, 1.0], (m, n)) * 10.0 ** rng.uniform(-6, 6, (m, n))
        signed[rng.random((m, n)) < 0.1] = 0.0
        tied = rng.integers(-3, 1, (m, n)).astype(float)
        for cost in (signed, tied):
            expected = w1_linprog(a, b, cost)
            assert emd(a, b, cost) == pytest.approx(expected, rel=1e-12, abs=1e-12)
            assert emd(a, b, cost, 0) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_emd_permutation_assignment_is_exact():
    """Uniform masses with a permutation of zero-cost cells: the optimum is 0 and every basis is degenerate."""
    rng = np.random.default_rng(22)
    for n in (2, 5, 13, 30):
        perm = rng.permutation(n)
        cost = 1.0 + rng.integers(0, 2, (n, n)).astype(float)
        cost[np.arange(n), perm] = 0.0
        a = np.full(n, 1.0 / n)
        assert emd(a, a, cost) == 0.0
        assert emd(a, a, cost, 0) == 0.0


def test_workspace_reused_across_sizes_gives_the_same_values():
    """One workspace, sized for the largest problem, solves any smaller one (no state leaks between solves)."""
    rng = np.random.default_rng(23)
    ws = new_workspace(20, 20)
    for kind in KINDS * 4:
        m, n = (int(v) for v in rng.integers(1, 21, 2))
        a, b, cost = _problem(rng, m, n, kind)
        assert emd_with(a, b, cost, ws) == emd(a, b, cost)


def test_graph_metric_costs_like_ollivier():
    """Shortest-path costs on a small unweighted graph (integer, heavily tied) with few distinct masses."""
    rng = np.random.default_rng(24)
    for _ in range(20):
        m, n = (int(v) for v in rng.integers(2, 15, 2))
        cost = rng.integers(1, 4, (m, n)).astype(float)
        a = np.r_[np.full(m - 1, 1.0 / (2 * (m - 1))), 0.5]
        b = np.r_[np.full(n - 1, 1.0 / (2 * (n - 1))), 0.5]
        expected = w1_linprog(a, b, cost)
        assert emd(a, b, cost) == pytest.approx(expected, abs=1e-12)
        assert emd(a, b, cost, 0) == pytest.approx(expected, abs=1e-12)


def test_metric_problems_of_dense_neighbourhoods_match_lp():
    """Ollivier-sized problems (about 40 x 40, the re-hung subtrees are deep and wide): a shortest-path
    metric of a random weighted graph between two disjoint node sets, near-uniform masses plus one
    heavy node on each side, as a dense correlation graph gives after common mass cancels."""
    rng = np.random.default_rng(25)
    for _ in range(4):
        n_nodes = 90
        w = rng.uniform(0.5, 1.5, (n_nodes, n_nodes))
        w = np.minimum(w, w.T)
        w[rng.random((n_nodes, n_nodes)) < 0.5] = np.inf  # about half the pairs are edges
        np.fill_diagonal(w, 0.0)
        for k in range(n_nodes):  # Floyd-Warshall: the reference metric, independent of the kernels
            w = np.minimum(w, w[:, k:k + 1] + w[k:k + 1, :])
        rows, cols = rng.permutation(n_nodes)[:80].reshape(2, 40)
        a = np.r_[0.49, np.full(39, 0.51 / 39)]
        b = np.r_[0.5, rng.uniform(0.5, 1.5, 39)]
        b[1:] *= 0.5 / b[1:].sum()
        cost = np.ascontiguousarray(w[np.ix_(rows, cols)])
        assert np.isfinite(cost).all()
        assert emd(a, b, cost) == pytest.approx(w1_linprog(a, b, cost), abs=1e-12)
