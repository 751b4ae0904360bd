"""Ricci curvature: closed forms on K_n and P_n, W1 against an LP, full pipeline against networkx + LP.

Closed forms (unit weights, idleness alpha, uniform neighbour measure). W1 with a metric ground
cost depends only on m_x - m_y (Kantorovich-Rubinstein), and on a path it is the L1 distance of
the CDFs:
* K_n: m_x and m_y differ only at x and y, by |alpha - (1 - alpha)/(n - 1)|, which moves a distance
  1: kappa = 1 - |alpha - (1 - alpha)/(n - 1)|  (alpha = 0: (n - 2)/(n - 1)).
* P_n, inner edge (both ends of degree 2), beta = (1 - alpha)/2: CDF gaps beta, alpha, beta:
  W1 = 2 beta + alpha = 1, kappa = 0 for every alpha.
* P_n (n >= 3), end edge (0, 1): masses (alpha, 1 - alpha, 0) vs (beta, alpha, beta): CDF gaps
  |alpha - beta| and beta: kappa = 1 - beta - |alpha - beta|.
* P_2: kappa = 1 - |2 alpha - 1|.
Forman (node weights 1, unit edges): F(x, y) = 4 - deg x - deg y.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from tradepulse_assets.indicators import (
    CorrelationGraph,
    correlation_graph,
    forman_ricci,
    graph_from_correlation,
    ollivier_ricci,
    ricci_curvature,
    shortest_paths,
    wasserstein1,
)
from tradepulse_assets.indicators._jit import forced_mode
from tradepulse_assets.indicators.ricci import _csr, transport_distances, transport_radius

from .references import knn_threshold_graph_edges, w1_linprog

ALPHAS = [0.0, 0.25, 0.5, 0.9]


def _graph(n: int, edges: list[tuple[int, int]], weights: list[float] | None = None) -> CorrelationGraph:
    s = np.array([min(e) for e in edges], dtype=np.int64)
    t = np.array([max(e) for e in edges], dtype=np.int64)
    w = np.ones(len(edges)) if weights is None else np.asarray(weights, dtype=np.float64)
    return CorrelationGraph(n, s, t, w, np.full(len(edges), np.nan), threshold=np.nan)


@pytest.mark.parametrize("n", [3, 5, 8])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_complete_graph_closed_form(n, alpha):
    g = _graph(n, list(itertools.combinations(range(n), 2)))
    expected = 1.0 - abs(alpha - (1.0 - alpha) / (n - 1))
    np.testing.assert_allclose(ollivier_ricci(g, alpha), expected, atol=1e-12)
    np.testing.assert_allclose(forman_ricci(g), 6 - 2 * n, atol=1e-12)


@pytest.mark.parametrize("n", [3, 4, 7])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_path_graph_closed_form(n, alpha):
    g = _graph(n, [(i, i + 1) for i in range(n - 1)])
    beta = (1.0 - alpha) / 2.0
    end = 1.0 - beta - abs(alpha - beta)
    expected = np.zeros(n - 1)
    expected[0] = expected[-1] = end
    np.testing.assert_allclose(ollivier_ricci(g, alpha), expected, atol=1e-12)
    forman = np.zeros(n - 1)
    forman[0] = forman[-1] = 1.0
    np.testing.assert_allclose(forman_ricci(g), forman, atol=1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_single_edge_closed_form(alpha):
    g = _graph(2, [(0, 1)], [0.7])
    assert ollivier_ricci(g, alpha)[0] == pytest.approx(1.0 - abs(2 * alpha - 1.0), abs=1e-12)
    assert forman_ricci(g)[0] == pytest.approx(2.0, abs=1e-12)


def test_w1_matches_linear_program_on_random_and_degenerate_problems():
    rng = np.random.default_rng(11)
    for trial in range(120):
        m, n = (int(v) for v in rng.integers(1, 14, 2))
        a = rng.random(m) if trial % 3 else np.ones(m)
        b = rng.random(n) if trial % 3 else np.ones(n)
        a, b = a / a.sum(), b / b.sum()
        # integer costs and uniform masses make ties and degenerate bases common
        cost = rng.integers(0, 4, (m, n)).astype(float) if trial % 2 else rng.random((m, n))
        assert wasserstein1(a, b, cost) == pytest.approx(w1_linprog(a, b, cost), abs=1e-12)


@pytest.mark.parametrize("n_symbols, threshold, max_neighbours, mode", [
    (12, 0.45, None, "serial"),
    (12, 0.45, None, "parallel"),
    (40, 0.3, 3, "serial"),  # sparse neighbour-capped graph: long shortest paths, bounded Dijkstra radius
    (40, 0.3, 3, "parallel"),
])
def test_ollivier_matches_networkx_shortest_paths_and_lp_on_weighted_graphs(n_symbols, threshold, max_neighbours,
                                                                            mode):
    rng = np.random.default_rng(12)
    for _ in range(4 if n_symbols < 20 else 2):
        x = rng.standard_normal((80, n_symbols)) + rng.standard_normal((80, 1))
        g = correlation_graph(x, threshold=threshold, max_neighbours=max_neighbours)
        G = nx.Graph()
        G.add_weighted_edges_from(zip(g.source.tolist(), g.target.tolist(), g.weight.tolist()))
        dist = dict(nx.all_pairs_dijkstra_path_length(G))
        for alpha in (0.0, 0.5):
            with forced_mode(mode):
                ours = ollivier_ricci(g, alpha)
            for k, (u, v) in enumerate(zip(g.source.tolist(), g.target.tolist())):
                su = list(G.neighbors(u)) + [u]
                sv = list(G.neighbors(v)) + [v]
                a = np.r_[np.full(len(su) - 1, (1 - alpha) / (len(su) - 1)), alpha]
                b = np.r_[np.full(len(sv) - 1, (1 - alpha) / (len(sv) - 1)), alpha]
                cost = np.array([[dist[p][q] for q in sv] for p in su])
                assert ours[k] == pytest.approx(1 - w1_linprog(a, b, cost) / dist[u][v], abs=1e-9)


def test_correlation_graph_is_connected_mst_plus_threshold_edges():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((200, 30)) + 0.8 * rng.standard_normal((200, 1))
    g = correlation_graph(x, threshold=0.5)
    rho = np.corrcoef(x, rowvar=False)
    G = nx.Graph()
    G.add_nodes_from(range(30))
    G.add_edges_from(zip(g.source.tolist(), g.target.tolist()))
    assert nx.is_connected(G)
    strong = {(i, j) for i, j in itertools.combinations(range(30), 2) if rho[i, j] > 0.5}
    assert strong <= set(G.edges()) | {(j, i) for i, j in G.edges()}
    np.testing.assert_allclose(g.weight, np.sqrt(2 * (1 - rho[g.source, g.target])))
    # the non-threshold edges form part of a minimum spanning tree of d
    full = nx.Graph()
    d = np.sqrt(np.clip(2 * (1 - rho), 0, None))
    full.add_weighted_edges_from((i, j, d[i, j]) for i, j in itertools.combinations(range(30), 2))
    mst_weight = nx.minimum_spanning_tree(full).size(weight="weight")
    ours_mst = nx.minimum_spanning_tree(G.__class__((u, v, {"weight": d[u, v]}) for u, v in G.edges()))
    assert ours_mst.size(weight="weight") == pytest.approx(mst_weight, rel=1e-12)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_neighbour_capped_graph_matches_reference_construction(k):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((120, 35)) + 1.5 * rng.standard_normal((120, 1))  # a market factor: rho ~ 0.7
    rho = np.corrcoef(x, rowvar=False)
    g = correlation_graph(x, threshold=0.5, max_neighbours=k)
    assert set(zip(g.source.tolist(), g.target.tolist())) == knn_threshold_graph_edges(rho, 0.5, k)
    assert g.source.size <= 35 * (k + 1)
    uncapped = correlation_graph(x, threshold=0.5)
    assert uncapped.source.size > g.source.size


def test_transport_radius_covers_every_distance_the_transports_read():
    x = np.random.default_rng(18).standard_normal((60, 25)) + np.random.default_rng(19).standard_normal((60, 1))
    g = correlation_graph(x, threshold=0.4, max_neighbours=2)
    indptr, indices, weights = _csr(g)
    radius = transport_radius(indptr, indices, weights)
    G = nx.Graph()
    G.add_weighted_edges_from(zip(g.source.tolist(), g.target.tolist(), g.weight.tolist()))
    dist = dict(nx.all_pairs_dijkstra_path_length(G))
    for u, v in zip(g.source.tolist(), g.target.tolist()):
        for a in [u, *G.neighbors(u)]:
            for b in [v, *G.neighbors(v)]:
                assert dist[a][b] <= radius[a] and dist[b][a] <= radius[b]


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_transport_distances_are_the_exact_three_edge_balls(mode):
    """Sparse rows: exactly the nodes within 3 edges of each node, sorted, with networkx's Dijkstra distances."""
    x = np.random.default_rng(20).standard_normal((60, 40)) + np.random.default_rng(21).standard_normal((60, 1))
    g = correlation_graph(x, threshold=0.4, max_neighbours=2)
    indptr, indices, weights = _csr(g)
    with forced_mode(mode):
        balls = transport_distances(indptr, indices, weights)
    G = nx.Graph()
    G.add_weighted_edges_from(zip(g.source.tolist(), g.target.tolist(), g.weight.tolist()))
    dist = dict(nx.all_pairs_dijkstra_path_length(G))
    for a in range(g.n_nodes):
        row = balls.node[balls.ptr[a]:balls.ptr[a + 1]]
        assert row.tolist() == sorted(nx.single_source_shortest_path_length(G, a, cutoff=3))
        np.testing.assert_allclose(balls.dist[balls.ptr[a]:balls.ptr[a + 1]], [dist[a][b] for b in row.tolist()],
                                   rtol=0, atol=1e-12)
    assert balls.node.size < g.n_nodes ** 2  # sparse: a capped graph's balls do not cover every pair


def test_result_carries_its_parameters():
    x = np.random.default_rng(14).standard_normal((100, 8))
    res = ricci_curvature(x, threshold=0.3, alpha=0.25)
    assert res.params == {"threshold": 0.3, "alpha": 0.25, "n_nodes": 8, "exp_power": 0, "n_observations": 100}
    assert res.ollivier.shape == res.forman.shape == (res.n_edges,)


def test_shortest_paths_match_dijkstra():
    x = np.random.default_rng(15).standard_normal((60, 15))
    g = correlation_graph(x, threshold=0.2)
    G = nx.Graph()
    G.add_weighted_edges_from(zip(g.source.tolist(), g.target.tolist(), g.weight.tolist()))
    ref = dict(nx.all_pairs_dijkstra_path_length(G))
    d = shortest_paths(g)
    for i in range(15):
        for j in range(15):
            assert d[i, j] == pytest.approx(ref[i][j], abs=1e-12)


def test_ricci_rejects_bad_input():
    rng = np.random.default_rng(16)
    x = rng.standard_normal((50, 5))
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        ricci_curvature(bad)
    flat = x.copy()
    flat[:, 1] = 0.0
    with pytest.raises(ValueError, match="constant"):
        ricci_curvature(flat)
    dup = x.copy()
    dup[:, 4] = dup[:, 0]
    with pytest.raises(ValueError, match="perfectly correlated"):
        ricci_curvature(dup)
    with pytest.raises(ValueError, match="alpha"):
        ollivier_ricci(correlation_graph(x), alpha=1.5)
    with pytest.raises(ValueError, match="square"):
        graph_from_correlation(np.ones((3, 4)), 0.5)
    with pytest.raises(ValueError, match="max_neighbours"):
        correlation_graph(x, 0.5, max_neighbours=0)
    with pytest.raises(ValueError, match="equal total mass"):
        wasserstein1([0.5, 0.5], [0.2, 0.2], np.ones((2, 2)))
