"""Ollivier-Ricci and Forman-Ricci curvature of the correlation graph of symbol returns.

Why: negative curvature on the market's correlation graph concentrates before stress (the graph
becomes tree-like, with bridges between clusters); averaged per window it is one of the regime
features the consumers read. Definitions follow ``GraphRicciCurvature`` 0.6.1 so values can be
reproduced there:

* graph: nodes are symbols; distance ``d_ij = sqrt(2 (1 - rho_ij))`` from the Pearson correlation
  of the window's log returns; edges = minimum spanning tree of ``d`` (keeps the graph connected)
  plus every pair with ``rho_ij > threshold`` that is, for one of its ends, among that end's
  ``max_neighbours`` most correlated symbols (None: every pair above the threshold); edge weight =
  ``d_ij``. The neighbour cap keeps the graph sparse as the universe grows (a market factor puts a
  large share of all pairs above any fixed threshold): at most ``n (max_neighbours + 1)`` edges.
* Ollivier: ``kappa(x, y) = 1 - W1(m_x, m_y) / d_G(x, y)`` with ``m_x = alpha`` at ``x`` and
  ``(1 - alpha) / deg(x)`` on each neighbour (``exp_power=0``), W1 with ground cost the weighted
  shortest-path distance ``d_G``, solved exactly (``method="OTD"``); 0 if ``d_G(x, y) < 1e-7``.
  ``d_G`` is computed and stored only where the transports read it: every cost entry joins a
  neighbour of ``x`` to a neighbour of ``y``, so from a node ``a`` only the nodes within 3 edges (its
  ball) are read; one Dijkstra per node stops once its ball is settled and never goes beyond the
  longest 3-edge walk from ``a`` (exact, unlike a hop bound), and the balls are kept as sorted sparse
  rows (``BallDistances``): memory is the sum of the balls, not n x n.
  Because ``d_G`` is a metric, W1 depends only on ``m_x - m_y`` (Kantorovich-Rubinstein), so mass
  common to both neighbourhoods is cancelled before the transport solve: smaller problems, same value.
* Forman (1-d, node weights 1): ``F(e) = w_e (2 / w_e - sum_{v ~ x, v != y} 1 / sqrt(w_e w_xv)
  - sum_{v ~ y, v != x} 1 / sqrt(w_e w_yv))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
from numba import prange

from ._jit import kernel, parallel_kernel, use_threads
from ._validate import as_float_array, require_finite, require_length
from .transport import emd_with, new_workspace

DISTANCE_EPSILON = 1e-7  # GraphRicciCurvature returns curvature 0 below this endpoint distance
MASS_EPSILON = 1e-14  # |m_x - m_y| below this is rounding of equal masses
EDGE_BLOCK = 32  # edges per parallel work item (one workspace each); per-edge cost varies with the degrees
NODE_BLOCK = 32  # Dijkstra sources per parallel work item (one set of scratch arrays each)
# Weight of the cost shift f(z) = w (d(z, y) - d(z, x)) before the transport solve (any w gives the same
# W1). Pivots per dense neighbourhood (200 nodes, degree 99): 252 at w = 0, 243 at 0.5, 230-233 from
# 0.1 to 0.25; on 100 nodes (degree 76) 100 at 0.5, 89 at 0.2. Up to 0.5, f is 1-Lipschitz, so the
# shifted costs stay non-negative.
SHIFT_WEIGHT = 0.25


@dataclass(frozen=True)
class CorrelationGraph:
    """Undirected weighted graph on ``n_nodes`` symbols; edges ``source < target``, sorted."""

    n_nodes: int
    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    rho: np.ndarray
    threshold: float
    max_neighbours: int | None = None


@dataclass(frozen=True)
class RicciResult:
    """Per-edge curvatures with the parameters that produced them."""

    graph: CorrelationGraph
    ollivier: np.ndarray
    forman: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def n_edges(self) -> int:
        return int(self.graph.source.size)


# ------------------------------------------------------------------------------------------ graph
@kernel(inline="always")
def _distance(rho: float) -> float:
    """``sqrt(2 (1 - rho))``, clipped at 0 (rounding can put rho a hair above 1)."""
    return np.sqrt(max(2.0 * (1.0 - rho), 0.0))


@kernel
def _prim_mst(rho: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """Minimum spanning tree of the distances of ``rho`` (dense Prim, O(n^2), distances on the fly)."""
    n = rho.shape[0]
    in_tree = np.zeros(n, dtype=np.bool_)
    best = np.full(n, np.inf)
    link = np.full(n, -1, dtype=np.int64)
    in_tree[0] = True
    for j in range(1, n):
        best[j] = _distance(rho[0, j])
        link[j] = 0
    for k in range(n - 1):
        nxt = -1
        bval = np.inf
        for j in range(n):
            if not in_tree[j] and (best[j] < bval or nxt < 0):
                bval = best[j]
                nxt = j
        in_tree[nxt] = True
        src[k] = min(nxt, link[nxt])
        dst[k] = max(nxt, link[nxt])
        for j in range(n):
            if not in_tree[j]:
                d = _distance(rho[nxt, j])
                if d < best[j]:
                    best[j] = d
                    link[j] = nxt


@kernel
def _strong_pairs(rho: np.ndarray, threshold: float, k: int, keys: np.ndarray) -> int:
    """Pairs with ``rho > threshold`` among row ``i``'s ``k`` most correlated, as keys ``min * n + max``.

    One pass per row keeps the k best in a small sorted buffer; a tie with the k-th keeps the lower
    index (as a stable sort would). Returns how many keys were written (``keys`` holds n * k).
    """
    n = rho.shape[0]
    best_v = np.empty(k)
    best_j = np.empty(k, dtype=np.int64)
    count = 0
    for i in range(n):
        filled = 0
        for j in range(n):
            v = rho[i, j]
            if j == i or v <= threshold or (filled == k and v <= best_v[k - 1]):
                continue
            pos = filled if filled < k else k - 1
            while pos > 0 and best_v[pos - 1] < v:
                if pos < k:
                    best_v[pos] = best_v[pos - 1]
                    best_j[pos] = best_j[pos - 1]
                pos -= 1
            best_v[pos] = v
            best_j[pos] = j
            if filled < k:
                filled += 1
        for q in range(filled):
            j = best_j[q]
            keys[count] = min(i, j) * n + max(i, j)
            count += 1
    return count


def graph_from_correlation(rho: object, threshold: float, max_neighbours: int | None = None) -> CorrelationGraph:
    """MST of ``d = sqrt(2(1 - rho))`` plus pairs with ``rho > threshold`` (capped to nearest neighbours).

    With ``max_neighbours`` no n x n temporary is built: the pairs come from one pass per row, so
    the graph of 3,000 symbols costs a few tens of milliseconds beyond the correlation matrix itself.
    """
    r = as_float_array(rho, "rho", (2,))
    require_finite(r, "rho")
    n = r.shape[0]
    if r.shape != (n, n):
        raise ValueError(f"rho: expected a square matrix, got shape {r.shape}")
    require_length(n, 2, "rho", "symbols")
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [-1, 1], got {threshold}")
    if max_neighbours is not None and max_neighbours < 1:
        raise ValueError(f"max_neighbours must be >= 1 or None, got {max_neighbours}")
    src = np.empty(n - 1, dtype=np.int64)
    dst = np.empty(n - 1, dtype=np.int64)
    _prim_mst(r, src, dst)
    if max_neighbours is not None and max_neighbours < n - 1:
        keys = np.empty(n * max_neighbours, dtype=np.int64)
        used = _strong_pairs(r, float(threshold), int(max_neighbours), keys)
        pairs = keys[:used]
    else:
        si, ti = np.nonzero(np.triu(r > threshold, k=1))
        pairs = si * n + ti
    key = np.unique(np.concatenate([pairs, src * n + dst]))  # sorted: edges ordered by (source, target)
    s, t = key // n, key % n
    w = np.sqrt(np.clip(2.0 * (1.0 - r[s, t]), 0.0, None))
    zero = np.flatnonzero(w < DISTANCE_EPSILON)
    if zero.size:
        raise ValueError(
            f"rho: symbols {int(s[zero[0]])} and {int(t[zero[0]])} are perfectly correlated (distance "
            f"{w[zero[0]]:.1e} < {DISTANCE_EPSILON}); duplicated series have no meaningful curvature"
        )
    return CorrelationGraph(n, s.astype(np.int64), t.astype(np.int64), w, r[s, t], float(threshold), max_neighbours)


def correlation_graph(returns: object, threshold: float = 0.5, max_neighbours: int | None = None
                      ) -> CorrelationGraph:
    """Correlation graph of ``returns`` (observations x symbols)."""
    x = as_float_array(returns, "returns", (2,))
    require_finite(x, "returns")
    require_length(x.shape[0], 3, "returns", "observations")
    require_length(x.shape[1], 2, "returns", "symbols")
    flat = np.flatnonzero(np.ptp(x, axis=0) == 0)
    if flat.size:
        raise ValueError(f"returns: constant series in column(s) {flat[:10].tolist()}; correlation undefined")
    return graph_from_correlation(np.corrcoef(x, rowvar=False), threshold, max_neighbours)


def _csr(g: CorrelationGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    both_s = np.concatenate([g.source, g.target])
    both_t = np.concatenate([g.target, g.source])
    both_w = np.concatenate([g.weight, g.weight])
    order = np.lexsort((both_t, both_s))
    indptr = np.zeros(g.n_nodes + 1, dtype=np.int64)
    np.add.at(indptr, both_s + 1, 1)
    return np.cumsum(indptr), both_t[order].astype(np.int64), both_w[order]


# ----------------------------------------------------------------------------------- shortest paths
@kernel
def _mark_ball(src: int, hops: int, indptr: np.ndarray, indices: np.ndarray, mark: np.ndarray, queue: np.ndarray
               ) -> int:
    """Set ``mark[v] = src`` for every node within ``hops`` edges of ``src`` (listed in ``queue``); returns how many."""
    mark[src] = src
    queue[0] = src
    head = 0
    tail = 1
    for _ in range(hops):
        level_end = tail
        while head < level_end:
            u = queue[head]
            head += 1
            for p in range(indptr[u], indptr[u + 1]):
                v = indices[p]
                if mark[v] != src:
                    mark[v] = src
                    queue[tail] = v
                    tail += 1
    return tail


@kernel
def _dijkstra(src: int, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, radius: float,
              hops: int, dist: np.ndarray, heap_d: np.ndarray, heap_v: np.ndarray, mark: np.ndarray,
              queue: np.ndarray, labelled: np.ndarray) -> tuple:
    """Exact distances from ``src`` to every node within ``hops`` edges of it (the ball, listed in ``queue``).

    Dijkstra (binary heap, lazy deletion) stops as soon as every node of the ball is settled, and
    never labels a node beyond ``radius`` (the longest 3-edge walk, see ``transport_radius``). Other
    entries of ``dist`` are inf or an upper bound. ``dist`` must be all inf; each push follows a strict
    decrease, so at most ``len(indices) + 1`` entries are ever on the heap. ``mark`` must hold no
    ``src`` (it is stamped with the source's index). Every node given a label is listed in
    ``labelled`` (to reset ``dist`` for the next source). Returns (ball size, labelled count).
    """
    remaining = _mark_ball(src, hops, indptr, indices, mark, queue)
    ball = remaining
    dist[src] = 0.0
    labelled[0] = src
    n_labelled = 1
    heap_d[0] = 0.0
    heap_v[0] = src
    size = 1
    while size > 0:
        d = heap_d[0]
        u = heap_v[0]
        size -= 1
        if size > 0:  # move the last entry to the root and sift it down
            ld = heap_d[size]
            lv = heap_v[size]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                if c + 1 < size and heap_d[c + 1] < heap_d[c]:
                    c += 1
                if heap_d[c] >= ld:
                    break
                heap_d[i] = heap_d[c]
                heap_v[i] = heap_v[c]
                i = c
            heap_d[i] = ld
            heap_v[i] = lv
        if d > dist[u]:
            continue  # a stale entry
        if mark[u] == src:  # settled: final
            remaining -= 1
            if remaining == 0:
                break
        for p in range(indptr[u], indptr[u + 1]):
            v = indices[p]
            nd = d + weights[p]
            if nd < dist[v] and nd <= radius:
                if dist[v] == np.inf:
                    labelled[n_labelled] = v
                    n_labelled += 1
                dist[v] = nd
                i = size  # sift up
                size += 1
                while i > 0:
                    parent = (i - 1) // 2
                    if heap_d[parent] <= nd:
                        break
                    heap_d[i] = heap_d[parent]
                    heap_v[i] = heap_v[parent]
                    i = parent
                heap_d[i] = nd
                heap_v[i] = v
    return ball, n_labelled


@kernel
def _dijkstra_workspace(n: int, n_edges: int) -> tuple:
    """The arrays ``_dijkstra`` works in, for one thread's sources on a graph of ``n`` nodes: the heap (at
    most ``n_edges + 1`` entries), ``mark`` stamped with no source yet, the ball queue and the labelled list."""
    heap_d = np.empty(n_edges + 1)
    heap_v = np.empty(n_edges + 1, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    return heap_d, heap_v, mark, np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)


@kernel
def _all_pairs_rows(lo: int, hi: int, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                    dist: np.ndarray) -> None:
    n = dist.shape[0]
    heap_d, heap_v, mark, queue, labelled = _dijkstra_workspace(n, indices.size)
    for src in range(lo, hi):
        _dijkstra(src, indptr, indices, weights, np.inf, n, dist[src], heap_d, heap_v, mark, queue, labelled)


@kernel
def _all_pairs_serial(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, dist: np.ndarray) -> None:
    _all_pairs_rows(0, dist.shape[0], indptr, indices, weights, dist)


@parallel_kernel
def _all_pairs_parallel(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, dist: np.ndarray) -> None:
    n = dist.shape[0]
    for blk in prange((n + NODE_BLOCK - 1) // NODE_BLOCK):
        _all_pairs_rows(blk * NODE_BLOCK, min(n, (blk + 1) * NODE_BLOCK), indptr, indices, weights, dist)


@kernel
def _ball_sizes(indptr: np.ndarray, indices: np.ndarray, hops: int, sizes: np.ndarray) -> None:
    n = sizes.size
    mark = np.full(n, -1, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    for a in range(n):
        sizes[a] = _mark_ball(a, hops, indptr, indices, mark, queue)


@kernel
def _ball_rows(lo: int, hi: int, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, radius: np.ndarray,
               hops: int, ball_ptr: np.ndarray, ball_node: np.ndarray, ball_dist: np.ndarray) -> None:
    """Rows ``lo..hi`` of the ball distances: one Dijkstra each, its ball written sorted by node."""
    n = indptr.size - 1
    dist = np.full(n, np.inf)
    heap_d, heap_v, mark, queue, labelled = _dijkstra_workspace(n, indices.size)
    for src in range(lo, hi):
        size, n_labelled = _dijkstra(src, indptr, indices, weights, radius[src], hops, dist, heap_d, heap_v, mark,
                                     queue, labelled)
        ball = np.sort(queue[:size])
        out = ball_ptr[src]
        for k in range(size):
            ball_node[out + k] = ball[k]
            ball_dist[out + k] = dist[ball[k]]
        for k in range(n_labelled):
            dist[labelled[k]] = np.inf


@kernel
def _ball_serial(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, radius: np.ndarray, hops: int,
                 ball_ptr: np.ndarray, ball_node: np.ndarray, ball_dist: np.ndarray) -> None:
    _ball_rows(0, indptr.size - 1, indptr, indices, weights, radius, hops, ball_ptr, ball_node, ball_dist)


@parallel_kernel
def _ball_parallel(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, radius: np.ndarray, hops: int,
                   ball_ptr: np.ndarray, ball_node: np.ndarray, ball_dist: np.ndarray) -> None:
    n = indptr.size - 1
    for blk in prange((n + NODE_BLOCK - 1) // NODE_BLOCK):
        _ball_rows(blk * NODE_BLOCK, min(n, (blk + 1) * NODE_BLOCK), indptr, indices, weights, radius, hops,
                   ball_ptr, ball_node, ball_dist)


def transport_radius(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per node ``a``, the longest walk of at most 3 edges from ``a``: no transport reads ``d_G(a, .)`` beyond it.

    A cost entry is ``d_G(u, v)`` with ``u`` in the closed neighbourhood of ``x`` and ``v`` in that of
    ``y`` for an edge ``(x, y)``, so ``d_G(u, v) <= w_ux + w_xy + w_yv``; the potentials read
    ``d_G(u, x)``, ``d_G(u, y)`` and the same from ``v``, all shorter walks. A relative slack of 1e-9
    keeps a node whose Dijkstra sum rounds differently from the walk's inside the radius.
    """
    n = indptr.size - 1
    owner = np.repeat(np.arange(n), np.diff(indptr))
    longest = np.zeros(n)
    for _ in range(3):  # walks of 1, 2, 3 edges: extend every walk by one edge at its start
        extended = np.zeros(n)
        np.maximum.at(extended, owner, weights + longest[indices])
        longest = extended
    return longest * (1.0 + 1e-9) + 1e-12


TRANSPORT_HOPS = 3  # a cost entry joins a neighbour of x to a neighbour of y: at most 3 edges apart


@dataclass(frozen=True)
class BallDistances:
    """Exact ``d_G(a, b)`` for every ``b`` within 3 edges of ``a``: row ``a`` is ``node[ptr[a]:ptr[a + 1]]``
    (sorted) with ``dist`` alongside. Memory is the sum of the balls, not n x n."""

    ptr: np.ndarray
    node: np.ndarray
    dist: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.ptr.nbytes + self.node.nbytes + self.dist.nbytes

    def dense(self, n_nodes: int) -> np.ndarray:
        """As an n x n matrix, inf outside the balls (tests)."""
        out = np.full((n_nodes, n_nodes), np.inf)
        rows = np.repeat(np.arange(n_nodes), np.diff(self.ptr))
        out[rows, self.node] = self.dist
        return out


def transport_distances(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> BallDistances:
    """The distances the Ollivier transports read, and no others (one bounded Dijkstra per node)."""
    n = indptr.size - 1
    sizes = np.empty(n, dtype=np.int64)
    _ball_sizes(indptr, indices, TRANSPORT_HOPS, sizes)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    node = np.empty(int(ptr[-1]), dtype=np.int32)  # half the bytes of int64; 2 billion nodes is plenty
    dist = np.empty(int(ptr[-1]))
    radius = transport_radius(indptr, indices, weights)
    work = 30.0 * float(ptr[-1]) * max(1.0, indices.size / max(n, 1))  # a heap step per labelled arc, ~30 ns
    (_ball_parallel if use_threads(work) else _ball_serial)(indptr, indices, weights, radius, TRANSPORT_HOPS, ptr,
                                                            node, dist)
    return BallDistances(ptr, node, dist)


def shortest_paths(g: CorrelationGraph) -> np.ndarray:
    """All-pairs weighted shortest-path distances (inf between components), one Dijkstra per node."""
    indptr, indices, weights = _csr(g)
    dist = np.full((g.n_nodes, g.n_nodes), np.inf)
    work = 30.0 * float(g.n_nodes) * indices.size
    (_all_pairs_parallel if use_threads(work) else _all_pairs_serial)(indptr, indices, weights, dist)
    return dist


# --------------------------------------------------------------------------------------- curvature
@kernel(inline="always")
def _scatter_row(u: int, ball_ptr: np.ndarray, ball_node: np.ndarray, ball_dist: np.ndarray, row: np.ndarray
                 ) -> None:
    """``row[v] = d_G(u, v)`` for the ball of ``u`` (other entries keep whatever they held: never read)."""
    for p in range(ball_ptr[u], ball_ptr[u + 1]):
        row[ball_node[p]] = ball_dist[p]


@kernel
def _edge_curvature(x: int, y: int, indptr: np.ndarray, indices: np.ndarray, ball_ptr: np.ndarray,
                    ball_node: np.ndarray, ball_dist: np.ndarray, alpha: float, mass: np.ndarray,
                    touched: np.ndarray, sa: np.ndarray, sb: np.ndarray, a: np.ndarray, b: np.ndarray,
                    fa: np.ndarray, fb: np.ndarray, cost_buf: np.ndarray, row: np.ndarray, ws: tuple) -> float:
    """Ollivier-Ricci curvature of edge (x, y); ``mass`` must be all zero and is left all zero."""
    _scatter_row(x, ball_ptr, ball_node, ball_dist, row)
    dxy = row[y]
    if dxy < DISTANCE_EPSILON:
        return 0.0
    # m_x - m_y on the union of the closed neighbourhoods
    nt = 0
    for node, sign in ((x, 1.0), (y, -1.0)):
        share = sign * (1.0 - alpha) / (indptr[node + 1] - indptr[node])
        for p in range(indptr[node], indptr[node + 1]):
            mass[indices[p]] += share
            touched[nt] = indices[p]
            nt += 1
        mass[node] += sign * alpha
        touched[nt] = node
        nt += 1
    na = 0
    nb = 0
    for k in range(nt):
        v = touched[k]
        if mass[v] > MASS_EPSILON:
            sa[na] = v
            a[na] = mass[v]
            na += 1
        elif mass[v] < -MASS_EPSILON:
            sb[nb] = v
            b[nb] = -mass[v]
            nb += 1
        mass[v] = 0.0  # a node touched twice is taken once: its mass is zero on the second visit
    if na == 0 or nb == 0:
        return 1.0
    # shift the cost by the potential f(z) = SHIFT_WEIGHT (d(z, y) - d(z, x)): the optimal plan is
    # unchanged (row/column constants), W1 = emd(shifted) + sum a f - sum b f, and the least-cost start
    # on the shifted cost is closer to optimal
    for i in range(na):
        fa[i] = row[sa[i]]  # d(x, .) while row holds x's ball
    for j in range(nb):
        fb[j] = row[sb[j]]
    _scatter_row(y, ball_ptr, ball_node, ball_dist, row)
    offset = 0.0
    for i in range(na):
        fa[i] = SHIFT_WEIGHT * (row[sa[i]] - fa[i])
        offset += a[i] * fa[i]
    for j in range(nb):
        fb[j] = SHIFT_WEIGHT * (row[sb[j]] - fb[j])
        offset -= b[j] * fb[j]
    cost = cost_buf[: na * nb].reshape((na, nb))
    n = row.size
    scale = 0.0
    for i in range(na):
        u = sa[i]
        start = ball_ptr[u]
        if ball_ptr[u + 1] - start == n:  # the ball is every node (dense graphs): its row is indexed by node
            for j in range(nb):
                cost[i, j] = ball_dist[start + sb[j]] - fa[i] + fb[j]
        else:
            _scatter_row(u, ball_ptr, ball_node, ball_dist, row)
            for j in range(nb):
                cost[i, j] = row[sb[j]] - fa[i] + fb[j]
        for j in range(nb):
            scale = max(scale, abs(cost[i, j]))
    return 1.0 - (emd_with(a[:na], b[:nb], cost, ws, cost_scale=scale) + offset) / dxy


@kernel
def _support_bound(indptr: np.ndarray) -> int:
    """Largest closed neighbourhood: a positive (negative) mass lies in the closed neighbourhood of x (y)."""
    k = 1
    for node in range(indptr.size - 1):
        k = max(k, indptr[node + 1] - indptr[node] + 1)
    return k


@kernel
def _ollivier_block(blk: int, indptr: np.ndarray, indices: np.ndarray, src: np.ndarray, dst: np.ndarray,
                    ball_ptr: np.ndarray, ball_node: np.ndarray, ball_dist: np.ndarray, alpha: float, k: int,
                    out: np.ndarray) -> None:
    """Edges ``[blk * EDGE_BLOCK, (blk + 1) * EDGE_BLOCK)`` with one workspace."""
    n = indptr.size - 1
    mass = np.zeros(n)
    row = np.empty(n)
    touched = np.empty(2 * k, dtype=np.int64)
    sa = np.empty(k, dtype=np.int64)
    sb = np.empty(k, dtype=np.int64)
    a = np.empty(k)
    b = np.empty(k)
    fa = np.empty(k)
    fb = np.empty(k)
    cost_buf = np.empty(k * k)
    ws = new_workspace(k, k)
    for e in range(blk * EDGE_BLOCK, min(src.size, (blk + 1) * EDGE_BLOCK)):
        out[e] = _edge_curvature(src[e], dst[e], indptr, indices, ball_ptr, ball_node, ball_dist, alpha, mass,
                                 touched, sa, sb, a, b, fa, fb, cost_buf, row, ws)


@kernel
def _ollivier_serial(indptr: np.ndarray, indices: np.ndarray, src: np.ndarray, dst: np.ndarray,
                     ball_ptr: np.ndarray, ball_node: np.ndarray, ball_dist: np.ndarray, alpha: float,
                     out: np.ndarray) -> None:
    k = _support_bound(indptr)
    for blk in range((src.size + EDGE_BLOCK - 1) // EDGE_BLOCK):
        _ollivier_block(blk, indptr, indices, src, dst, ball_ptr, ball_node, ball_dist, alpha, k, out)


@parallel_kernel
def _ollivier_parallel(indptr: np.ndarray, indices: np.ndarray, src: np.ndarray, dst: np.ndarray,
                       ball_ptr: np.ndarray, ball_node: np.ndarray, ball_dist: np.ndarray, alpha: float,
                       out: np.ndarray) -> None:
    k = _support_bound(indptr)
    for blk in prange((src.size + EDGE_BLOCK - 1) // EDGE_BLOCK):
        _ollivier_block(blk, indptr, indices, src, dst, ball_ptr, ball_node, ball_dist, alpha, k, out)


@kernel
def _forman_edges(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, src: np.ndarray,
                  dst: np.ndarray, w_edge: np.ndarray, out: np.ndarray) -> None:
    """Serial on purpose: a few additions per edge, below any threading floor even at 5,000 nodes."""
    for e in range(src.size):
        x = src[e]
        y = dst[e]
        we = w_edge[e]
        s = 0.0
        for p in range(indptr[x], indptr[x + 1]):
            if indices[p] != y:
                s += 1.0 / np.sqrt(we * weights[p])
        for p in range(indptr[y], indptr[y + 1]):
            if indices[p] != x:
                s += 1.0 / np.sqrt(we * weights[p])
        out[e] = we * (1.0 / we + 1.0 / we - s)


def ollivier_ricci(g: CorrelationGraph, alpha: float = 0.5) -> np.ndarray:
    """Exact Ollivier-Ricci curvature of every edge of ``g`` (order of ``g.source``)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (idleness) must lie in [0, 1], got {alpha}")
    if g.source.size == 0:
        return np.empty(0)
    indptr, indices, weights = _csr(g)
    balls = transport_distances(indptr, indices, weights)
    out = np.empty(g.source.size)
    degree = np.diff(indptr)
    work = 40.0 * float(np.sum((degree[g.source] + 1.0) * (degree[g.target] + 1.0)))  # cost-matrix cells, ~40 ns each
    args = (indptr, indices, g.source, g.target, balls.ptr, balls.node, balls.dist, float(alpha), out)
    if not use_threads(work):
        _ollivier_serial(*args)
        return out
    previous = numba.set_parallel_chunksize(1)  # dynamic scheduling of the edge blocks
    try:
        _ollivier_parallel(*args)
    finally:
        numba.set_parallel_chunksize(previous)
    return out


def forman_ricci(g: CorrelationGraph) -> np.ndarray:
    """Forman-Ricci curvature (GraphRicciCurvature ``FormanRicci``, method "1d", node weights 1)."""
    if g.source.size == 0:
        return np.empty(0)
    indptr, indices, weights = _csr(g)
    out = np.empty(g.source.size)
    _forman_edges(indptr, indices, weights, g.source, g.target, g.weight, out)
    return out


def ricci_from_graph(g: CorrelationGraph, alpha: float = 0.5) -> RicciResult:
    """Both curvatures of ``g``'s edges, with the parameters."""
    params = {"threshold": g.threshold, "alpha": float(alpha), "n_nodes": g.n_nodes, "exp_power": 0}
    return RicciResult(g, ollivier_ricci(g, alpha), forman_ricci(g), params)


def ricci_curvature(returns: object, threshold: float = 0.5, alpha: float = 0.5,
                    max_neighbours: int | None = None) -> RicciResult:
    """Correlation graph of ``returns`` (observations x symbols) and both curvatures of its edges."""
    g = correlation_graph(returns, threshold, max_neighbours)
    res = ricci_from_graph(g, alpha)
    res.params["n_observations"] = int(np.shape(returns)[0])
    return res
