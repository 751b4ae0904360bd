"""Exact discrete optimal transport (earth mover's distance) by the transportation simplex.

Why our own: Ollivier-Ricci needs one small exact transport problem per edge (supports are the
two closed neighbourhoods, a few dozen points). Calling POT from Python per edge costs more in
overhead than the solve itself; a numba solver runs all edges of a graph in one parallel loop.

Method: least-cost (matrix-minimum) start (a spanning-tree basis of m + n - 1 cells, degenerate
zero-flow cells kept in the basis), MODI potentials kept on a parent/child-list tree (a pivot updates only the re-hung
subtree), Dantzig entering rule within the block (most negative reduced
cost), cycle through the basis tree, ratio test. After ``BLAND_AFTER`` pivots the entering rule
switches to Bland's (first negative reduced cost), which cannot cycle, so the solver terminates on
degenerate problems too. The optimum value is exact up to floating-point rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._validate import as_float_array, require_finite

BLAND_AFTER = 2000
REFRESH_EVERY = 64  # pivots between full recomputations of the potentials (no drift)


@njit(cache=True)
def _potentials_and_parents(m: int, n: int, bi: np.ndarray, bj: np.ndarray, cost: np.ndarray, root: int,
                            u: np.ndarray, v: np.ndarray, parent: np.ndarray, parent_cell: np.ndarray) -> None:
    """BFS over the basis tree (rows 0..m-1, columns m..m+n-1) from row ``root``."""
    nn = m + n
    nb = bi.size
    deg = np.zeros(nn + 1, dtype=np.int64)
    for c in range(nb):
        deg[bi[c] + 1] += 1
        deg[m + bj[c] + 1] += 1
    for k in range(nn):
        deg[k + 1] += deg[k]
    fill = deg[:nn].copy()
    adj = np.empty(2 * nb, dtype=np.int64)
    for c in range(nb):
        adj[fill[bi[c]]] = c
        fill[bi[c]] += 1
        adj[fill[m + bj[c]]] = c
        fill[m + bj[c]] += 1
    seen = np.zeros(nn, dtype=np.bool_)
    queue = np.empty(nn, dtype=np.int64)
    queue[0] = root
    seen[root] = True
    u[root] = 0.0
    parent[root] = -1
    parent_cell[root] = -1
    head = 0
    tail = 1
    while head < tail:
        node = queue[head]
        head += 1
        for p in range(deg[node], deg[node + 1]):
            c = adj[p]
            if node < m:
                other = m + bj[c]
                if not seen[other]:
                    v[bj[c]] = cost[bi[c], bj[c]] - u[node]
            else:
                other = bi[c]
                if not seen[other]:
                    u[bi[c]] = cost[bi[c], bj[c]] - v[node - m]
            if not seen[other]:
                seen[other] = True
                parent[other] = node
                parent_cell[other] = c
                queue[tail] = other
                tail += 1


@njit(cache=True)
def _least_cost_start(a: np.ndarray, b: np.ndarray, cost: np.ndarray, bi: np.ndarray, bj: np.ndarray,
                      flow: np.ndarray) -> None:
    """Matrix-minimum start: repeatedly take the cheapest open cell, allocate, close exactly one line.

    Closing one line per allocation (never the last open row or column early) yields m + n - 1
    cells forming a spanning tree, with zero-flow cells where the start is degenerate.
    """
    m = a.size
    n = b.size
    ra = a.copy()
    rb = b.copy()
    row_open = np.ones(m, dtype=np.bool_)
    col_open = np.ones(n, dtype=np.bool_)
    rowmin = np.empty(m)
    rowarg = np.empty(m, dtype=np.int64)
    for i in range(m):
        best = np.inf
        arg = 0
        for j in range(n):
            if cost[i, j] < best:
                best = cost[i, j]
                arg = j
        rowmin[i] = best
        rowarg[i] = arg
    rows_left = m
    cols_left = n
    nb = m + n - 1
    for c in range(nb):
        # row minima are refreshed lazily: a stale minimum is a lower bound (closing columns only raises
        # it), so the smallest one is the true global minimum as soon as its column is still open
        while True:
            i = -1
            best = np.inf
            for r in range(m):
                if row_open[r] and (i < 0 or rowmin[r] < best):
                    best = rowmin[r]
                    i = r
            if col_open[rowarg[i]]:
                break
            best = np.inf
            arg = -1
            for jj in range(n):
                if col_open[jj] and (arg < 0 or cost[i, jj] < best):
                    best = cost[i, jj]
                    arg = jj
            rowmin[i] = best
            rowarg[i] = arg
        j = rowarg[i]
        q = min(ra[i], rb[j])
        bi[c] = i
        bj[c] = j
        flow[c] = q
        ra[i] -= q
        rb[j] -= q
        if c == nb - 1:
            break
        if (ra[i] <= rb[j] and rows_left > 1) or cols_left == 1:
            row_open[i] = False
            rows_left -= 1
        else:
            col_open[j] = False
            cols_left -= 1


@njit(cache=True)
def _refresh_potentials(parent: np.ndarray, parent_cell: np.ndarray, bi: np.ndarray, bj: np.ndarray,
                        cost: np.ndarray, m: int, pot: np.ndarray, depth: np.ndarray, stamp: np.ndarray,
                        it: int, stack: np.ndarray) -> None:
    """Potentials and depths from the parent pointers (root: row 0, potential 0), memoised walk."""
    stamp[0] = it
    pot[0] = 0.0
    depth[0] = 0
    for start in range(parent.size):
        sp = 0
        node = start
        while stamp[node] != it:
            stack[sp] = node
            sp += 1
            node = parent[node]
        while sp > 0:
            sp -= 1
            nd = stack[sp]
            p = parent[nd]
            c = parent_cell[nd]
            pot[nd] = cost[bi[c], bj[c]] - pot[p]
            depth[nd] = depth[p] + 1
            stamp[nd] = it


@njit(cache=True, inline="always")
def _attach(node: int, new_parent: int, parent: np.ndarray, first_child: np.ndarray, next_sib: np.ndarray,
            prev_sib: np.ndarray) -> None:
    parent[node] = new_parent
    prev_sib[node] = -1
    head = first_child[new_parent]
    next_sib[node] = head
    if head != -1:
        prev_sib[head] = node
    first_child[new_parent] = node


@njit(cache=True, inline="always")
def _detach(node: int, parent: np.ndarray, first_child: np.ndarray, next_sib: np.ndarray,
            prev_sib: np.ndarray) -> None:
    prv = prev_sib[node]
    nxt = next_sib[node]
    if prv != -1:
        next_sib[prv] = nxt
    else:
        first_child[parent[node]] = nxt
    if nxt != -1:
        prev_sib[nxt] = prv


@njit(cache=True)
def emd(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
    """Minimum of ``sum(P * cost)`` over plans ``P >= 0`` with row sums ``a`` and column sums ``b``."""
    m = a.size
    n = b.size
    nn = m + n
    nb = nn - 1
    bi = np.empty(nb, dtype=np.int64)
    bj = np.empty(nb, dtype=np.int64)
    flow = np.empty(nb)
    _least_cost_start(a, b, cost, bi, bj, flow)
    scale = 0.0
    for i in range(m):
        for j in range(n):
            if abs(cost[i, j]) > scale:
                scale = abs(cost[i, j])
    tol = 1e-13 * max(scale, 1e-300)
    u = np.empty(m)
    v = np.empty(n)
    pot = np.empty(nn)
    parent = np.empty(nn, dtype=np.int64)
    parent_cell = np.empty(nn, dtype=np.int64)
    _potentials_and_parents(m, n, bi, bj, cost, 0, u, v, parent, parent_cell)
    pot[:m] = u
    pot[m:] = v
    # children as doubly linked sibling lists, so a re-hung subtree is walked in O(its size)
    first_child = np.full(nn, -1, dtype=np.int64)
    next_sib = np.full(nn, -1, dtype=np.int64)
    prev_sib = np.full(nn, -1, dtype=np.int64)
    for node in range(1, nn):
        _attach(node, parent[node], parent, first_child, next_sib, prev_sib)
    depth = np.zeros(nn, dtype=np.int64)
    stamp = np.zeros(nn, dtype=np.int64)
    mark = np.zeros(nn, dtype=np.int64)
    stack = np.empty(nn, dtype=np.int64)
    path_nodes = np.empty(nn, dtype=np.int64)
    path_cells = np.empty(nn, dtype=np.int64)
    row_cells = np.empty(nn, dtype=np.int64)
    row_nodes = np.empty(nn, dtype=np.int64)
    col_cells = np.empty(nn, dtype=np.int64)
    col_nodes = np.empty(nn, dtype=np.int64)
    it = 0
    row_cursor = 0
    block = max(1, m // 4)
    while True:
        it += 1
        if it % REFRESH_EVERY == 0:  # re-derive potentials from the tree: no drift from incremental updates
            _refresh_potentials(parent, parent_cell, bi, bj, cost, m, pot, depth, stamp, it, stack)
        # pricing: basic cells have reduced cost 0 to rounding, far above -tol
        best = -tol
        ei = -1
        ej = -1
        if it > BLAND_AFTER:  # Bland: first improving cell in index order (cannot cycle)
            for i in range(m):
                for j in range(n):
                    if cost[i, j] - pot[i] - pot[m + j] < best:
                        ei = i
                        ej = j
                        break
                if ei >= 0:
                    break
        else:  # partial Dantzig: most negative reduced cost within blocks of rows, resuming where we stopped
            r = row_cursor
            for cnt in range(m):
                ui = pot[r]
                for j in range(n):
                    rc = cost[r, j] - ui - pot[m + j]
                    if rc < best:
                        best = rc
                        ei = r
                        ej = j
                r += 1
                if r == m:
                    r = 0
                if ei >= 0 and (cnt + 1) % block == 0:
                    break
            row_cursor = r
        if ei < 0:
            break
        rc_enter = cost[ei, ej] - pot[ei] - pot[m + ej]
        # the cycle: entering (ei, ej) '+', then the tree paths from row ei and column ej to their meeting
        # node; on each side the cell next to the entering cell is '-' and signs alternate
        node = ei
        while node != -1:
            mark[node] = it
            node = parent[node]
        lc = 0
        node = m + ej
        while mark[node] != it:
            col_cells[lc] = parent_cell[node]
            col_nodes[lc] = node
            lc += 1
            node = parent[node]
        meet = node
        lr = 0
        node = ei
        while node != meet:
            row_cells[lr] = parent_cell[node]
            row_nodes[lr] = node
            lr += 1
            node = parent[node]
        theta = np.inf
        leave = -1
        leave_child = -1
        leave_on_col = False
        for k in range(0, lc, 2):
            c = col_cells[k]
            if flow[c] < theta:
                theta = flow[c]
                leave = c
                leave_child = col_nodes[k]
                leave_on_col = True
        for k in range(0, lr, 2):
            c = row_cells[k]
            if flow[c] < theta:
                theta = flow[c]
                leave = c
                leave_child = row_nodes[k]
                leave_on_col = False
        for k in range(lc):
            if k % 2 == 0:
                flow[col_cells[k]] -= theta
            else:
                flow[col_cells[k]] += theta
        for k in range(lr):
            if k % 2 == 0:
                flow[row_cells[k]] -= theta
            else:
                flow[row_cells[k]] += theta
        # the leaving cell's slot now holds the entering cell; re-hang the cut-off subtree on it:
        # the path q -> ... -> leave_child reverses, q hangs below the other end of the entering cell
        bi[leave] = ei
        bj[leave] = ej
        flow[leave] = theta
        if leave_on_col:
            q = m + ej
            attach_to = ei
            delta = rc_enter  # subtree holds column ej: v_ej += rc, so columns +rc and rows -rc
        else:
            q = ei
            attach_to = m + ej
            delta = -rc_enter  # subtree holds row ei: u_ei += rc, so rows +rc and columns -rc
        lp = 0
        node = q
        while True:
            path_nodes[lp] = node
            path_cells[lp] = parent_cell[node]
            lp += 1
            if node == leave_child:
                break
            node = parent[node]
        for k in range(lp):
            _detach(path_nodes[k], parent, first_child, next_sib, prev_sib)
        _attach(q, attach_to, parent, first_child, next_sib, prev_sib)
        parent_cell[q] = leave
        for k in range(1, lp):
            _attach(path_nodes[k], path_nodes[k - 1], parent, first_child, next_sib, prev_sib)
            parent_cell[path_nodes[k]] = path_cells[k - 1]
        # shift the potentials of the re-hung subtree
        sp = 1
        stack[0] = q
        while sp > 0:
            sp -= 1
            node = stack[sp]
            if node < m:
                pot[node] -= delta
            else:
                pot[node] += delta
            child = first_child[node]
            while child != -1:
                stack[sp] = child
                sp += 1
                child = next_sib[child]
    total = 0.0
    for c in range(nb):
        total += flow[c] * cost[bi[c], bj[c]]
    return total


def wasserstein1(a: object, b: object, cost: object) -> float:
    """Exact transport cost between histograms ``a`` and ``b`` (equal total mass) under ``cost``."""
    av = as_float_array(a, "a", (1,))
    bv = as_float_array(b, "b", (1,))
    cm = as_float_array(cost, "cost", (2,))
    for arr, name in ((av, "a"), (bv, "b"), (cm, "cost")):
        require_finite(arr, name)
    if cm.shape != (av.size, bv.size):
        raise ValueError(f"cost: shape {cm.shape} does not match len(a)={av.size} x len(b)={bv.size}")
    if av.size == 0 or bv.size == 0:
        raise ValueError("a and b must not be empty")
    if (av < 0).any() or (bv < 0).any():
        raise ValueError("a and b must be non-negative masses")
    sa, sb = float(av.sum()), float(bv.sum())
    if abs(sa - sb) > 1e-9 * max(sa, sb, 1.0):
        raise ValueError(f"a and b must have equal total mass, got {sa!r} and {sb!r}")
    return float(emd(av, bv, cm))
