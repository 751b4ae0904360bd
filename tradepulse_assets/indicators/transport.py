"""Exact discrete optimal transport (earth mover's distance) by the transportation simplex.

Why our own: Ollivier-Ricci needs one small exact transport problem per edge (supports are the
two closed neighbourhoods, a few dozen points). Calling POT from Python per edge costs more in
overhead than the solve itself; a numba solver runs all edges of a graph in one parallel loop, and
with a reusable workspace (``new_workspace``) a solve allocates nothing.

Method (rows 0..m-1 and columns m..m+n-1 are the nodes of the basis tree):

* start: least-cost (matrix-minimum) rule, a spanning-tree basis of m + n - 1 cells with degenerate
  zero-flow cells kept; row minima are refreshed eagerly when their column closes, so each pick is
  one scan of the open rows.
* pricing: partial Dantzig over blocks of rows (most negative reduced cost), the row minimum of
  ``cost[r, :] - v`` taken as a branch-free min reduction and the column found only for the best row.
* pivot: the cycle through the entering cell is found by climbing from both ends with the node
  depths; the cut-off subtree is re-hung on the entering cell (parent pointers and doubly linked
  sibling lists) and only its potentials and depths are shifted.
* exactness: potentials are re-derived from the tree every ``REFRESH_EVERY`` pivots and always
  before optimality is declared, so incremental rounding never decides the answer.
* termination: after ``BLAND_AFTER`` pivots the entering rule switches to Bland's (first negative
  reduced cost in index order), which cannot cycle on degenerate problems.

The optimum value is exact up to floating-point rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._validate import as_float_array, require_finite

BLAND_AFTER = 2000
REFRESH_EVERY = 64  # pivots between full recomputations of the potentials (no drift)


@njit(cache=True)
def new_workspace(m_max: int, n_max: int) -> tuple:
    """Scratch arrays for problems up to ``m_max`` x ``n_max``; reusable, never shared between threads."""
    nn = m_max + n_max
    ints = np.empty((13, nn + 1), dtype=np.int64)
    floats = np.empty((6, nn + 1))
    adj = np.empty(2 * nn, dtype=np.int64)
    return ints, floats, adj


# ------------------------------------------------------------------------------------------ start
@njit(cache=True, inline="always")
def _min_index(values: np.ndarray, k: int) -> tuple:
    """Smallest of ``values[:k]`` and its first index: a branch-free min reduction, then one search."""
    best = np.inf
    for i in range(k):
        best = min(best, values[i])
    arg = 0
    while values[arg] != best:
        arg += 1
    return best, arg


@njit(cache=True, inline="always")
def _open_row_minimum(cost: np.ndarray, i: int, col_closed: np.ndarray, row: np.ndarray) -> tuple:
    """Cheapest open cell of row ``i`` (closed columns carry ``col_closed = inf``)."""
    n = cost.shape[1]
    for j in range(n):
        row[j] = cost[i, j] + col_closed[j]
    return _min_index(row, n)


@njit(cache=True)
def _least_cost_start(a: np.ndarray, b: np.ndarray, cost: np.ndarray, bi: np.ndarray, bj: np.ndarray,
                      flow: np.ndarray, ra: np.ndarray, rb: np.ndarray, col_closed: np.ndarray,
                      rowmin: np.ndarray, rowarg: np.ndarray, row: np.ndarray) -> None:
    """Matrix-minimum start: repeatedly take the cheapest open cell, allocate, close exactly one line.

    Closing one line per allocation (never the last open row or column early) yields m + n - 1
    cells forming a spanning tree, with zero-flow cells where the start is degenerate. Closed lines
    are masked with +inf (a closed row's minimum, a closed column's ``col_closed``) so the scans are
    branch-free; a row minimum is recomputed when its column closes.
    """
    m = a.size
    n = b.size
    ra[:m] = a
    rb[:n] = b
    col_closed[:n] = 0.0
    for i in range(m):
        rowmin[i], rowarg[i] = _open_row_minimum(cost, i, col_closed, row)
    rows_left = m
    cols_left = n
    nb = m + n - 1
    for c in range(nb):
        _, i = _min_index(rowmin, m)
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
            rowmin[i] = np.inf
            rows_left -= 1
        else:
            col_closed[j] = np.inf
            cols_left -= 1
            for r in range(m):
                if rowarg[r] == j and rowmin[r] != np.inf:
                    rowmin[r], rowarg[r] = _open_row_minimum(cost, r, col_closed, row)


# ------------------------------------------------------------------------------------- basis tree
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
def _build_tree(m: int, n: int, bi: np.ndarray, bj: np.ndarray, adj: np.ndarray, offs: np.ndarray,
                queue: np.ndarray, parent: np.ndarray, pcell: np.ndarray, first_child: np.ndarray,
                next_sib: np.ndarray, prev_sib: np.ndarray) -> None:
    """Parent pointers, parent cells and child lists of the basis cells as a tree rooted at row 0."""
    nn = m + n
    nb = nn - 1
    offs[: nn + 1] = 0
    for c in range(nb):
        offs[bi[c] + 1] += 1
        offs[m + bj[c] + 1] += 1
    for k in range(nn):
        offs[k + 1] += offs[k]
    for c in range(nb):  # fill, shifting each start forward; undone below
        adj[offs[bi[c]]] = c
        offs[bi[c]] += 1
        adj[offs[m + bj[c]]] = c
        offs[m + bj[c]] += 1
    for k in range(nn, 0, -1):
        offs[k] = offs[k - 1]
    offs[0] = 0
    first_child[:nn] = -1
    parent[:nn] = -2  # unvisited
    parent[0] = -1
    pcell[0] = -1
    queue[0] = 0
    head = 0
    tail = 1
    while head < tail:
        node = queue[head]
        head += 1
        for p in range(offs[node], offs[node + 1]):
            c = adj[p]
            other = m + bj[c] if node < m else bi[c]
            if parent[other] == -2:
                _attach(other, node, parent, first_child, next_sib, prev_sib)
                pcell[other] = c
                queue[tail] = other
                tail += 1


@njit(cache=True)
def _refresh(m: int, bi: np.ndarray, bj: np.ndarray, cost: np.ndarray, parent: np.ndarray, pcell: np.ndarray,
             first_child: np.ndarray, next_sib: np.ndarray, u: np.ndarray, v: np.ndarray, depth: np.ndarray,
             stack: np.ndarray) -> None:
    """Potentials (u of row 0 = 0, ``u_i + v_j = cost`` on basic cells) and depths, top-down from the root."""
    u[0] = 0.0
    depth[0] = 0
    sp = 0
    child = first_child[0]
    while child != -1:
        stack[sp] = child
        sp += 1
        child = next_sib[child]
    while sp > 0:
        sp -= 1
        node = stack[sp]
        p = parent[node]
        c = pcell[node]
        depth[node] = depth[p] + 1
        if node < m:
            u[node] = cost[bi[c], bj[c]] - v[p - m]
        else:
            v[node - m] = cost[bi[c], bj[c]] - u[p]
        child = first_child[node]
        while child != -1:
            stack[sp] = child
            sp += 1
            child = next_sib[child]


# ---------------------------------------------------------------------------------------- pricing
@njit(cache=True, inline="always")
def _reduced_row_min(cost: np.ndarray, r: int, v: np.ndarray, n: int) -> float:
    """``min_j cost[r, j] - v[j]`` as a branch-free reduction (vectorises)."""
    t = np.inf
    for j in range(n):
        t = min(t, cost[r, j] - v[j])
    return t


@njit(cache=True)
def _price_dantzig(cost: np.ndarray, u: np.ndarray, v: np.ndarray, tol: float, start: int, block: int) -> tuple:
    """Most negative reduced cost in blocks of rows from ``start``, stopping after the first block with one.

    Returns (row, column, next start); row -1 if no reduced cost is below ``-tol``.
    """
    m, n = cost.shape
    best = -tol
    ei = -1
    r = start
    for cnt in range(m):
        rc = _reduced_row_min(cost, r, v, n) - u[r]
        if rc < best:
            best = rc
            ei = r
        r += 1
        if r == m:
            r = 0
        if ei >= 0 and (cnt + 1) % block == 0:
            break
    if ei < 0:
        return -1, -1, r
    t = _reduced_row_min(cost, ei, v, n)
    ej = 0
    while cost[ei, ej] - v[ej] != t:
        ej += 1
    return ei, ej, r


@njit(cache=True)
def _price_bland(cost: np.ndarray, u: np.ndarray, v: np.ndarray, tol: float) -> tuple:
    """First cell in index order with reduced cost below ``-tol`` (Bland's rule, cannot cycle)."""
    m, n = cost.shape
    for i in range(m):
        for j in range(n):
            if cost[i, j] - v[j] - u[i] < -tol:
                return i, j
    return -1, -1


# ------------------------------------------------------------------------------------------ pivot
@njit(cache=True)
def _pivot(m: int, ei: int, ej: int, rc: float, bi: np.ndarray, bj: np.ndarray, flow: np.ndarray,
           parent: np.ndarray, pcell: np.ndarray, depth: np.ndarray, first_child: np.ndarray,
           next_sib: np.ndarray, prev_sib: np.ndarray, u: np.ndarray, v: np.ndarray, row_cells: np.ndarray,
           row_nodes: np.ndarray, col_cells: np.ndarray, col_nodes: np.ndarray, stack: np.ndarray) -> None:
    """Bring cell (ei, ej) with reduced cost ``rc`` < 0 into the basis."""
    # the cycle: entering (ei, ej) '+', then the tree paths from row ei and column ej up to their
    # common ancestor; on each side the cell next to the entering cell is '-' and signs alternate
    lr = 0
    lc = 0
    p = ei
    q = m + ej
    while depth[p] > depth[q]:
        row_cells[lr] = pcell[p]
        row_nodes[lr] = p
        lr += 1
        p = parent[p]
    while depth[q] > depth[p]:
        col_cells[lc] = pcell[q]
        col_nodes[lc] = q
        lc += 1
        q = parent[q]
    while p != q:
        row_cells[lr] = pcell[p]
        row_nodes[lr] = p
        lr += 1
        p = parent[p]
        col_cells[lc] = pcell[q]
        col_nodes[lc] = q
        lc += 1
        q = parent[q]
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
        flow[col_cells[k]] += -theta if k % 2 == 0 else theta
    for k in range(lr):
        flow[row_cells[k]] += -theta if k % 2 == 0 else theta
    # the leaving cell's slot now holds the entering cell; re-hang the cut-off subtree on it: the
    # path top -> ... -> leave_child reverses, top hangs below the other end of the entering cell
    bi[leave] = ei
    bj[leave] = ej
    flow[leave] = theta
    if leave_on_col:
        top = m + ej
        attach_to = ei
        delta = rc  # subtree holds column ej: v += rc on its columns, u -= rc on its rows
    else:
        top = ei
        attach_to = m + ej
        delta = -rc  # subtree holds row ei: u += rc on its rows, v -= rc on its columns
    lp = 0  # the path, collected in ``stack`` (free until the subtree walk below)
    node = top
    while True:
        stack[lp] = node
        lp += 1
        if node == leave_child:
            break
        node = parent[node]
    for k in range(lp):
        _detach(stack[k], parent, first_child, next_sib, prev_sib)
    _attach(top, attach_to, parent, first_child, next_sib, prev_sib)
    for k in range(1, lp):
        _attach(stack[k], stack[k - 1], parent, first_child, next_sib, prev_sib)
    cell = leave  # each path node takes over the cell that joined its old child to it
    for k in range(lp):
        old = pcell[stack[k]]
        pcell[stack[k]] = cell
        cell = old
    # shift the potentials and re-derive the depths of the re-hung subtree (parents before children)
    sp = 1
    stack[0] = top
    while sp > 0:
        sp -= 1
        node = stack[sp]
        depth[node] = depth[parent[node]] + 1
        if node < m:
            u[node] -= delta
        else:
            v[node - m] += delta
        child = first_child[node]
        while child != -1:
            stack[sp] = child
            sp += 1
            child = next_sib[child]


# ------------------------------------------------------------------------------------------ solve
@njit(cache=True)
def emd_with(a: np.ndarray, b: np.ndarray, cost: np.ndarray, ws: tuple) -> float:
    """``emd`` using the scratch arrays ``ws`` of ``new_workspace`` (at least len(a) x len(b))."""
    m = a.size
    n = b.size
    nb = m + n - 1
    ints, floats, adj = ws
    bi, bj, parent, pcell, depth = ints[0], ints[1], ints[2], ints[3], ints[4]
    first_child, next_sib, prev_sib, stack = ints[5], ints[6], ints[7], ints[8]
    row_cells, row_nodes, col_cells, col_nodes = ints[9], ints[10], ints[11], ints[12]
    flow, u, v, ra, rb, scratch = floats[0], floats[1], floats[2], floats[3], floats[4], floats[5]
    # the start's scratch (column mask, row minima, their columns, one row) borrows buffers filled later
    _least_cost_start(a, b, cost, bi, bj, flow, ra, rb, v, u, row_cells, scratch)
    _build_tree(m, n, bi, bj, adj, depth, stack, parent, pcell, first_child, next_sib, prev_sib)
    _refresh(m, bi, bj, cost, parent, pcell, first_child, next_sib, u, v, depth, stack)
    scale = 0.0
    for i in range(m):
        for j in range(n):
            scale = max(scale, abs(cost[i, j]))
    tol = 1e-13 * max(scale, 1e-300)
    block = max(1, m // 4)
    cursor = 0
    fresh = True  # potentials exactly re-derived since the last pivot
    it = 0
    while True:
        if it > BLAND_AFTER:
            ei, ej = _price_bland(cost, u, v, tol)
        else:
            ei, ej, cursor = _price_dantzig(cost, u, v, tol, cursor, block)
        if ei < 0:
            if fresh:
                break
            _refresh(m, bi, bj, cost, parent, pcell, first_child, next_sib, u, v, depth, stack)
            fresh = True
            continue
        it += 1
        rc = cost[ei, ej] - v[ej] - u[ei]
        _pivot(m, ei, ej, rc, bi, bj, flow, parent, pcell, depth, first_child, next_sib, prev_sib, u, v,
               row_cells, row_nodes, col_cells, col_nodes, stack)
        fresh = False
        if it % REFRESH_EVERY == 0:
            _refresh(m, bi, bj, cost, parent, pcell, first_child, next_sib, u, v, depth, stack)
            fresh = True
    total = 0.0
    for c in range(nb):
        total += flow[c] * cost[bi[c], bj[c]]
    return total


@njit(cache=True)
def emd(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
    """Minimum of ``sum(P * cost)`` over plans ``P >= 0`` with row sums ``a`` and column sums ``b``."""
    return emd_with(a, b, cost, new_workspace(a.size, b.size))


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
