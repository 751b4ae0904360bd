"""Exact discrete optimal transport (earth mover's distance) by the transportation simplex.

Why our own: Ollivier-Ricci needs one small exact transport problem per edge (supports are the
two closed neighbourhoods, a few dozen points). Calling POT from Python per edge costs more in
overhead than the solve itself; a numba solver runs all edges of a graph in one parallel loop, and
with a reusable workspace (``new_workspace``) a solve allocates nothing.

Method (rows 0..m-1 and columns m..m+n-1 are the nodes of the basis tree):

* start: least-cost (matrix-minimum) rule, a spanning-tree basis of m + n - 1 cells with degenerate
  zero-flow cells kept; row minima are refreshed eagerly when their column closes, so each pick is
  one scan of the open rows.
* pricing: partial Dantzig over blocks of rows (most negative reduced cost), candidate cells listed
  by a scan and re-priced until none is left.
* every argmin (the start's cheapest open cell and row, a row's most negative reduced cost) is one
  vectorised pass: the float's bits as an order-preserving int64 with the index in the low bits, so
  the minimum is an integer min reduction (LLVM vectorises those, not float ones) that also says where.
* pivot: the cycle through the entering cell is found by climbing from both ends with the subtree
  sizes (the end with the smaller subtree cannot be the common ancestor); the cut-off subtree is
  re-hung on the entering cell, sizes change only on the cycle, and the potentials are shifted on
  the smaller side of the cut: the subtree, or the rest of the tree the other way (reduced costs
  see only differences across the cut).
* tree layout: parent pointers, subtree sizes and the preorder as a cyclic linked list with each
  subtree's last node, so a subtree is a run of the list and either side of a cut is walked by
  following one pointer per node (a depth-first walk over child lists cost three times as much).
* exactness: potentials are re-derived from the tree every ``REFRESH_EVERY`` pivots and always
  before optimality is declared, so incremental rounding never decides the answer.
* termination: after ``BLAND_AFTER`` pivots the entering rule switches to Bland's (first negative
  reduced cost in index order), which cannot cycle on degenerate problems.

The optimum value is exact up to floating-point rounding.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import kernel
from ._validate import as_float_array, require_finite

BLAND_AFTER = 2000
CANDIDATE_DIV = 8  # a scan stops once 1/8 of the rows gave an entering candidate
REFRESH_EVERY = 64  # pivots between full recomputations of the potentials (no drift)

# Rows of the integer and float workspaces. The hot loop passes the two 2-d arrays, not a dozen 1-d
# ones: every array handed to a numba function costs an atomic reference-count update or two, which
# with one call per pivot was a third of the solve time.
BI, BJ = 0, 1  # basic cell k is (t[BI, k], t[BJ, k]) with flow f[FLOW, k]
PARENT, PCELL, SIZE = 2, 3, 4  # tree node -> parent node, basic cell joining it to the parent, subtree size
THREAD, REV, LAST = 5, 6, 7  # preorder as a cyclic list (successor, predecessor); last node of each subtree
STACK = 8  # building: the depth-first stack; a pivot: the stem's old preorder boundaries
ROW_CELLS, ROW_NODES, COL_CELLS, COL_NODES = 9, 10, 11, 12  # the pivot cycle's two sides
ADJ, OFFS = 13, 14  # basis cells by node, to build the first tree
CAND_I, CAND_J = 15, 16  # candidate list of the pricing: entering cells found by the last scan
N_INT = 17
FLOW, U, V, REM_A, REM_B = 0, 1, 2, 3, 4  # flows; potentials of rows (u) and columns (v); masses left
ROW_BAR = 5  # start only: 0 on open rows, +inf on closed ones (as f[V] on columns)
N_FLOAT = 6


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64: a bit cast, free and vectorisable (``np.float64(x).view``
    compiles to a call per element)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@kernel
def new_workspace(m_max: int, n_max: int) -> tuple:
    """Scratch arrays for problems up to ``m_max`` x ``n_max``; reusable, never shared between threads."""
    width = 2 * (m_max + n_max + 1)
    return np.empty((N_INT, width), dtype=np.int64), np.empty((N_FLOAT, width))


# ------------------------------------------------------------------------------------------ start
@kernel(inline="always")
def _order_key(x: float) -> int:
    """An int64 ordered as the float64 ``x`` (NaN aside): its bits, with a negative's magnitude bits flipped
    (sign and magnitude to two's complement order; -0.0 sorts just below 0.0)."""
    bits = _bits(x)
    return bits ^ ((bits >> 63) & 0x7FFFFFFFFFFFFFFF)


@kernel(inline="always")
def _index_mask(n: int) -> int:
    """Low bits enough to hold an index below ``n``."""
    mask = 1
    while mask < n:
        mask *= 2
    return mask - 1


@kernel(inline="always")
def _row_argmin(x: np.ndarray, i: int, y: np.ndarray, k: int, sign: float, n: int, mask: int) -> int:
    """A ``j < n`` minimising ``x[i, j] + sign * y[k, j]``, up to ``mask`` ulps (then the lowest index wins).

    The value's order key with ``j`` in its low bits (``mask`` from ``_index_mask(n)``): one integer min
    reduction gives the minimum and its place, in a pass LLVM vectorises (it does not vectorise a
    float min reduction, and a separate search for the place cost another pass). A start cell or an
    entering cell need only be near-cheapest; for the optimality test, a cell cheaper by at most
    ``mask`` ulps of the row's values can hide behind the one found, which widens the 1e-13 relative
    tolerance by about as much (for Ollivier's supports, mask < 256: 6e-14).
    """
    best = np.iinfo(np.int64).max
    for j in range(n):
        best = min(best, (_order_key(x[i, j] + sign * y[k, j]) & ~mask) | j)
    return best & mask


@kernel(inline="always")
def _open_row_minimum(cost: np.ndarray, i: int, f: np.ndarray, mask: int) -> tuple:
    """Cheapest open cell of row ``i`` (a closed column j has ``f[V, j] = inf``): its cost and column."""
    arg = _row_argmin(cost, i, f, V, 1.0, cost.shape[1], mask)
    return cost[i, arg] + f[V, arg], arg


@kernel
def _least_cost_start(a: np.ndarray, b: np.ndarray, cost: np.ndarray, t: np.ndarray, f: np.ndarray) -> None:
    """Matrix-minimum start: repeatedly take the cheapest open cell, allocate, close exactly one line.

    Closing one line per allocation (never the last open row or column early) yields m + n - 1
    cells forming a spanning tree, with zero-flow cells where the start is degenerate. Scratch, in
    rows filled later: ``f[U]`` row minima, ``t[ROW_CELLS]`` their columns, ``f[ROW_BAR]`` and
    ``f[V]`` +inf on closed rows and columns; so the scans are branch-free min reductions.
    """
    m = a.size
    n = b.size
    col_mask = _index_mask(n)
    row_mask = _index_mask(m)
    for i in range(m):  # element loops, not slice assignments: those cost seconds of compile time
        f[REM_A, i] = a[i]
    for j in range(n):
        f[REM_B, j] = b[j]
        f[V, j] = 0.0
    for i in range(m):
        f[U, i], t[ROW_CELLS, i] = _open_row_minimum(cost, i, f, col_mask)
        f[ROW_BAR, i] = 0.0
    rows_left = m
    cols_left = n
    nb = m + n - 1
    for c in range(nb):
        i = _row_argmin(f, U, f, ROW_BAR, 1.0, m, row_mask)
        j = t[ROW_CELLS, i]
        q = min(f[REM_A, i], f[REM_B, j])
        t[BI, c] = i
        t[BJ, c] = j
        f[FLOW, c] = q
        f[REM_A, i] -= q
        f[REM_B, j] -= q
        if c == nb - 1:
            break
        if (f[REM_A, i] <= f[REM_B, j] and rows_left > 1) or cols_left == 1:
            f[ROW_BAR, i] = np.inf
            rows_left -= 1
        else:
            f[V, j] = np.inf
            cols_left -= 1
            for r in range(m):
                if t[ROW_CELLS, r] == j and f[ROW_BAR, r] == 0.0:
                    f[U, r], t[ROW_CELLS, r] = _open_row_minimum(cost, r, f, col_mask)


# ------------------------------------------------------------------------------------- basis tree
@kernel(inline="always")
def _link(t: np.ndarray, before: int, after: int) -> None:
    """Make ``after`` follow ``before`` in the preorder list."""
    t[THREAD, before] = after
    t[REV, after] = before


@kernel
def _build_tree(m: int, n: int, t: np.ndarray) -> None:
    """Parent pointers, parent cells, sizes and preorder list of the basis cells (a tree rooted at row 0)."""
    nn = m + n
    nb = nn - 1
    for k in range(nn + 1):
        t[OFFS, k] = 0
    for c in range(nb):
        t[OFFS, t[BI, c] + 1] += 1
        t[OFFS, m + t[BJ, c] + 1] += 1
    for k in range(nn):
        t[OFFS, k + 1] += t[OFFS, k]
    for c in range(nb):  # fill, moving each node's start forward; shifted back below
        for node in (t[BI, c], m + t[BJ, c]):
            t[ADJ, t[OFFS, node]] = c
            t[OFFS, node] += 1
    for k in range(nn, 0, -1):
        t[OFFS, k] = t[OFFS, k - 1]
    t[OFFS, 0] = 0
    for k in range(nn):
        t[PARENT, k] = -2  # unvisited
        t[SIZE, k] = 1
        t[LAST, k] = -1
    t[PARENT, 0] = -1
    t[PCELL, 0] = -1
    t[STACK, 0] = 0  # depth first: a popped node is next in preorder, its unvisited neighbours its children
    sp = 1
    prev = -1
    while sp > 0:
        sp -= 1
        node = t[STACK, sp]
        if prev != -1:
            _link(t, prev, node)
        prev = node
        for p in range(t[OFFS, node], t[OFFS, node + 1]):
            c = t[ADJ, p]
            other = m + t[BJ, c] if node < m else t[BI, c]
            if t[PARENT, other] == -2:
                t[PARENT, other] = node
                t[PCELL, other] = c
                t[STACK, sp] = other
                sp += 1
    _link(t, prev, 0)
    node = prev
    for _ in range(nn):  # reverse preorder: a node comes after its subtree, whose first node seen is its last
        if t[LAST, node] == -1:
            t[LAST, node] = node
        p = t[PARENT, node]
        if p >= 0:
            t[SIZE, p] += t[SIZE, node]
            if t[LAST, p] == -1:
                t[LAST, p] = t[LAST, node]
        node = t[REV, node]


@kernel
def _refresh(m: int, cost: np.ndarray, t: np.ndarray, f: np.ndarray) -> None:
    """Potentials (u of row 0 = 0, ``u_i + v_j = cost`` on basic cells), top-down from the root."""
    f[U, 0] = 0.0
    node = t[THREAD, 0]
    while node != 0:  # preorder: the parent's potential is set before the child's
        p = t[PARENT, node]
        c = t[PCELL, node]
        if node < m:
            f[U, node] = cost[t[BI, c], t[BJ, c]] - f[V, p - m]
        else:
            f[V, node - m] = cost[t[BI, c], t[BJ, c]] - f[U, p]
        node = t[THREAD, node]


# ---------------------------------------------------------------------------------------- pricing
@kernel(inline="always")
def _scan_candidates(cost: np.ndarray, t: np.ndarray, f: np.ndarray, tol: float, start: int, want: int) -> tuple:
    """Rows from ``start`` on: each row's most negative reduced cost below ``-tol`` joins the candidate list.

    Stops once ``want`` candidates are listed or every row was scanned; returns (candidates, next start).
    """
    m = cost.shape[0]
    nc = 0
    r = start
    n = cost.shape[1]
    mask = _index_mask(n)
    for _ in range(m):
        j = _row_argmin(cost, r, f, V, -1.0, n, mask)
        if cost[r, j] - f[V, j] - f[U, r] < -tol:
            t[CAND_I, nc] = r
            t[CAND_J, nc] = j
            nc += 1
        r += 1
        if r == m:
            r = 0
        if nc >= want:
            break
    return nc, r


@kernel(inline="always")
def _price_candidates(cost: np.ndarray, t: np.ndarray, f: np.ndarray, tol: float, nc: int) -> tuple:
    """Most negative current reduced cost among the listed candidates; drops those no longer below ``-tol``.

    Returns (row, column, candidates kept); row -1 if none is left.
    """
    best = -tol
    ei = -1
    ej = -1
    kept = 0
    for k in range(nc):
        i = t[CAND_I, k]
        j = t[CAND_J, k]
        rc = cost[i, j] - f[U, i] - f[V, j]
        if rc < -tol:
            t[CAND_I, kept] = i
            t[CAND_J, kept] = j
            kept += 1
            if rc < best:
                best = rc
                ei = i
                ej = j
    return ei, ej, kept


@kernel
def _price_bland(cost: np.ndarray, f: np.ndarray, tol: float) -> tuple:
    """First cell in index order with reduced cost below ``-tol`` (Bland's rule, cannot cycle)."""
    m, n = cost.shape
    for i in range(m):
        for j in range(n):
            if cost[i, j] - f[V, j] - f[U, i] < -tol:
                return i, j
    return -1, -1


# ------------------------------------------------------------------------------------------ pivot
@kernel(inline="always")
def _cycle(m: int, ei: int, ej: int, t: np.ndarray) -> tuple:
    """Tree paths from row ``ei`` and column ``ej`` up to their common ancestor (cells and lower nodes).

    The end with the smaller subtree climbs (an ancestor's subtree is strictly larger, so that end is
    not the common ancestor). With the entering cell '+', the cell next to it on each side is '-' and
    the signs alternate. Returns the lengths of the row side and the column side.
    """
    lr = 0
    lc = 0
    p = ei
    q = m + ej
    while p != q:
        if t[SIZE, p] < t[SIZE, q]:
            t[ROW_CELLS, lr] = t[PCELL, p]
            t[ROW_NODES, lr] = p
            lr += 1
            p = t[PARENT, p]
        else:
            t[COL_CELLS, lc] = t[PCELL, q]
            t[COL_NODES, lc] = q
            lc += 1
            q = t[PARENT, q]
    return lr, lc


@kernel(inline="always")
def _shift_potential(m: int, node: int, delta: float, f: np.ndarray) -> None:
    """Row potential u - ``delta`` or column potential v + ``delta``, without a branch."""
    col = node >= m
    f[U + col, node - m * col] += (2 * col - 1) * delta


@kernel(inline="always")
def _shift_run(m: int, node: int, count: int, delta: float, t: np.ndarray, f: np.ndarray) -> None:
    """``_shift_potential`` on ``count`` consecutive nodes of the preorder list from ``node``."""
    for _ in range(count):
        _shift_potential(m, node, delta, f)
        node = t[THREAD, node]


@kernel(inline="always")
def _rehang(m: int, nn: int, side: int, kl: int, side_len: int, other: int, other_len: int, attach_to: int,
            cell: int, delta: float, t: np.ndarray, f: np.ndarray) -> None:
    """Cut the leaving cell (parent cell of ``bottom = t[side, kl]``) and hang the cut-off subtree by
    ``top = t[side, 0]`` below ``attach_to`` via ``cell``.

    ``side`` and ``other`` are the cycle's node lists (``_cycle``), ``side`` the one holding the
    leaving cell. The stem top -> ... -> bottom reverses (each node takes over the cell that joined
    its old child to it). Sizes change on the cycle only: the bottom's old ancestors below the
    common ancestor lose the subtree, the new ones (``other``) gain it, the stem is re-derived.

    Preorder: the subtree's run leaves the list and comes back right after ``attach_to``, re-rooted:
    the top's old subtree, then each stem node's own part (its old run without its child's, that
    is the piece before the child's run and the piece after it). A subtree's last node changes for
    the stem nodes (all end where the new run ends), for the old ancestors whose run ended with the
    subtree, and for the new ones whose run ended at ``attach_to``. Potentials: the subtree's rows
    move by ``-delta`` and its columns by ``+delta``; when the subtree is the larger side, the rest
    of the tree (the rest of the cyclic list) moves the other way instead.
    """
    top = t[side, 0]
    bottom = t[side, kl]
    moved = t[SIZE, bottom]
    for k in range(kl + 1, side_len):
        t[SIZE, t[side, k]] -= moved
    for k in range(other_len):
        t[SIZE, t[other, k]] += moved
    below = 0  # new size of the stem node under the one being re-derived
    for k in range(kl, 0, -1):
        below += t[SIZE, t[side, k]] - t[SIZE, t[side, k - 1]]
        t[SIZE, t[side, k]] = below
    t[SIZE, top] = moved

    old_parent = t[PARENT, bottom]
    old_last = t[LAST, bottom]
    before = t[REV, bottom]
    _link(t, before, t[THREAD, old_last])  # the run leaves the list
    end = t[LAST, top]  # the new run so far: the top's old subtree
    after_child = t[THREAD, end]  # old successor of the child's run
    piece_end = t[REV, top]  # old predecessor of the child's run: the end of the node's first piece
    for k in range(1, kl + 1):
        node = t[side, k]
        child_last = t[LAST, t[side, k - 1]]
        node_last = t[LAST, node]
        next_piece_end = t[REV, node]
        next_after_child = t[THREAD, node_last] if node_last != child_last else after_child
        _link(t, end, node)
        if node_last != child_last:  # a second piece, after the child's run
            _link(t, piece_end, after_child)
            end = node_last
        else:
            end = piece_end
        piece_end = next_piece_end
        after_child = next_after_child
    _link(t, end, t[THREAD, attach_to])
    _link(t, attach_to, top)
    u = old_parent
    while u != -1 and t[LAST, u] == old_last:
        t[LAST, u] = before
        u = t[PARENT, u]
    u = attach_to
    while u != -1 and t[LAST, u] == attach_to:
        t[LAST, u] = end
        u = t[PARENT, u]
    t[PARENT, top] = attach_to
    t[LAST, top] = end
    for k in range(1, kl + 1):
        t[PARENT, t[side, k]] = t[side, k - 1]
        t[LAST, t[side, k]] = end
    for k in range(kl + 1):
        old = t[PCELL, t[side, k]]
        t[PCELL, t[side, k]] = cell
        cell = old
    if 2 * moved <= nn:
        _shift_run(m, top, moved, delta, t, f)
    else:
        _shift_run(m, t[THREAD, end], nn - moved, -delta, t, f)


@kernel(inline="always")
def _pivot(m: int, n: int, ei: int, ej: int, rc: float, t: np.ndarray, f: np.ndarray) -> None:
    """Bring cell (ei, ej) with reduced cost ``rc`` < 0 into the basis (ratio test on the cycle)."""
    lr, lc = _cycle(m, ei, ej, t)
    theta = np.inf
    leave = -1
    kl = -1
    leave_on_col = False
    for k in range(0, lc, 2):
        c = t[COL_CELLS, k]
        if f[FLOW, c] < theta:
            theta = f[FLOW, c]
            leave = c
            kl = k
            leave_on_col = True
    for k in range(0, lr, 2):
        c = t[ROW_CELLS, k]
        if f[FLOW, c] < theta:
            theta = f[FLOW, c]
            leave = c
            kl = k
            leave_on_col = False
    for k in range(lc):
        f[FLOW, t[COL_CELLS, k]] += -theta if k % 2 == 0 else theta
    for k in range(lr):
        f[FLOW, t[ROW_CELLS, k]] += -theta if k % 2 == 0 else theta
    # the leaving cell's slot now holds the entering cell, and the subtree cut off by removing it hangs
    # on the entering cell; entering makes rc = 0: the side holding column ej gets v += rc, u -= rc
    t[BI, leave] = ei
    t[BJ, leave] = ej
    f[FLOW, leave] = theta
    if leave_on_col:
        _rehang(m, m + n, COL_NODES, kl, lc, ROW_NODES, lr, ei, leave, rc, t, f)
    else:
        _rehang(m, m + n, ROW_NODES, kl, lr, COL_NODES, lc, m + ej, leave, -rc, t, f)


# ------------------------------------------------------------------------------------------ solve
@kernel
def emd_with(a: np.ndarray, b: np.ndarray, cost: np.ndarray, ws: tuple, bland_after: int = BLAND_AFTER,
             cost_scale: float = -1.0) -> float:
    """``emd`` using the scratch arrays ``ws`` of ``new_workspace`` (at least len(a) x len(b)).

    ``bland_after``: pivots before the entering rule falls back to Bland's (tests set 0 to run it).
    ``cost_scale``: ``max |cost|`` when the caller has it (it sets the optimality tolerance), else
    negative and it is computed here.
    """
    m = a.size
    n = b.size
    t, f = ws
    _least_cost_start(a, b, cost, t, f)
    _build_tree(m, n, t)
    _refresh(m, cost, t, f)
    scale = cost_scale
    if scale < 0.0:
        scale = 0.0
        for i in range(m):
            for j in range(n):
                scale = max(scale, abs(cost[i, j]))
    tol = 1e-13 * max(scale, 1e-300)
    want = max(1, m // CANDIDATE_DIV)
    cursor = 0
    nc = 0
    fresh = True  # potentials exactly re-derived since the last pivot
    it = 0
    while True:
        if it >= bland_after:
            ei, ej = _price_bland(cost, f, tol)
        else:
            ei, ej, nc = _price_candidates(cost, t, f, tol, nc)
            if ei < 0:
                nc, cursor = _scan_candidates(cost, t, f, tol, cursor, want)
                ei, ej, nc = _price_candidates(cost, t, f, tol, nc)
        if ei < 0:
            if fresh:
                break
            _refresh(m, cost, t, f)  # confirm optimality on drift-free potentials
            fresh = True
            continue
        it += 1
        _pivot(m, n, ei, ej, cost[ei, ej] - f[V, ej] - f[U, ei], t, f)
        fresh = False
        if it % REFRESH_EVERY == 0:
            _refresh(m, cost, t, f)
            fresh = True
    total = 0.0
    for c in range(m + n - 1):
        total += f[FLOW, c] * cost[t[BI, c], t[BJ, c]]
    return total


@kernel
def emd(a: np.ndarray, b: np.ndarray, cost: np.ndarray, bland_after: int = BLAND_AFTER) -> float:
    """Minimum of ``sum(P * cost)`` over plans ``P >= 0`` with row sums ``a`` and column sums ``b``."""
    return emd_with(a, b, cost, new_workspace(a.size, b.size), bland_after)


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
