"""Hurst exponent estimators: DFA-1 and rescaled range with the Anis-Lloyd correction.

Why two: DFA is robust to slow trends in intraday returns, R/S is the classical estimator most
consumers know; disagreement between them is itself a signal. Both follow the peer packages
exactly (``MFDFA`` for DFA with q=2, order 1; ``nolds.hurst_rs(fit="poly", corrected=True)``
for R/S) so a value here can be reproduced there with the same scales.

Inputs are *increments* (returns, fractional Gaussian noise): DFA builds the profile
``cumsum(x - mean(x))`` itself, as MFDFA does, so DFA of fGn with Hurst H gives a slope of H.
A 2-D input holds one series per row (e.g. many rolling windows); large calls split the rows between
the threads, and a single long series splits its scales (each scale is a full pass over the series).
Below the threading floor (``_jit.use_threads``) everything runs serially.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import prange

from ._jit import kernel, parallel_kernel, use_threads
from ._least_squares import ols_slope
from ._validate import as_float_array, as_scales, require_finite, require_length, require_not_constant

DFA_MIN_SCALE = 3  # a line through a segment needs more than order + 1 = 2 points (MFDFA drops lag <= 2)
RS_MIN_N = 2  # the unbiased standard deviation needs 2 points
DFA_MAX_FRACTION = 8  # default DFA scales stop at n // 8 (at least 8 segments per direction)
RS_MAX_FRACTION = 4  # default R/S subseries lengths stop at n // 4 (at least 4 subseries)
MIN_SCALE_SPAN = 2  # default scales must span at least a factor of 2, or the slope is noise


# --------------------------------------------------------------------------------------------- DFA
@kernel  # no fastmath: reassociated sums would differ in the last bit between a row of a batch and one series
def _mean(x: np.ndarray, scale: float) -> float:
    """Mean of ``x * scale`` (``scale`` a power of two: exact)."""
    total = 0.0
    for i in range(x.size):
        total += x[i] * scale
    return total / x.size


@kernel
def _dfa_profile(x: np.ndarray, scale: float) -> np.ndarray:
    """``cumsum(y - mean y)`` of ``y = x * scale``."""
    mean = _mean(x, scale)
    profile = np.empty(x.size)
    acc = 0.0
    for i in range(x.size):
        acc += x[i] * scale - mean
        profile[i] = acc
    return profile


@kernel
def _dfa_scale(profile: np.ndarray, s: int) -> float:
    """F(s): root mean residual variance of the profile about a least-squares line per segment of ``s``.

    One pass per segment: with ``z`` the profile minus its first value in the segment and ``t`` centred,
    the residual sum of squares is ``S_zz - S_z^2 / s - S_tz^2 / S_tt`` (the shift keeps the terms of
    the order of the segment's own variation, so the subtraction loses no more than a digit).
    """
    n = profile.size
    nseg = n // s
    centre = (s - 1) / 2.0
    stt = s * (s * s - 1.0) / 12.0
    total = 0.0
    for direction in range(2):  # forward segments from the start, backward ones from the end (as MFDFA)
        offset = 0 if direction == 0 else n % s
        if direction == 1 and offset == 0:  # the same segments again
            total *= 2.0
            break
        for v in range(nseg):
            start = offset + v * s
            y0 = profile[start]
            sz = 0.0
            stz = 0.0
            szz = 0.0
            for i in range(s):
                z = profile[start + i] - y0
                sz += z
                stz += (i - centre) * z
                szz += z * z
            total += max(szz - sz * sz / s - stz * stz / stt, 0.0) / s
    return math.sqrt(total / (2 * nseg))


@kernel
def _dfa_row(x: np.ndarray, scale: float, scales: np.ndarray, logs: np.ndarray, fluct: np.ndarray) -> float:
    profile = _dfa_profile(x, scale)
    for k in range(scales.size):
        fluct[k] = _dfa_scale(profile, scales[k])
    logf = np.log(fluct)
    return ols_slope(logs, logf, np.isfinite(logf))


@kernel
def _dfa_serial(x: np.ndarray, scale: np.ndarray, scales: np.ndarray, logs: np.ndarray, fluct: np.ndarray,
                hurst: np.ndarray) -> None:
    for row in range(x.shape[0]):
        hurst[row] = _dfa_row(x[row], scale[row], scales, logs, fluct[row])


@parallel_kernel
def _dfa_parallel(x: np.ndarray, scale: np.ndarray, scales: np.ndarray, logs: np.ndarray, fluct: np.ndarray,
                  hurst: np.ndarray) -> None:
    """Rows split between the threads (a batch of windows)."""
    for row in prange(x.shape[0]):
        hurst[row] = _dfa_row(x[row], scale[row], scales, logs, fluct[row])


@parallel_kernel
def _dfa_scales_parallel(x: np.ndarray, scale: np.ndarray, scales: np.ndarray, logs: np.ndarray, fluct: np.ndarray,
                         hurst: np.ndarray) -> None:
    """One long series: its scales split between the threads (each scale is a full pass)."""
    profile = _dfa_profile(x[0], scale[0])
    for k in prange(scales.size):
        fluct[0, k] = _dfa_scale(profile, scales[k])
    logf = np.log(fluct[0])
    hurst[0] = ols_slope(logs, logf, np.isfinite(logf))


@kernel
def _row_extents(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Per row the smallest and largest value, in one pass; False if any value is NaN or infinite.

    Four independent lanes (a fixed quarter of the elements each): one accumulator would wait for the
    previous element's result at every step. Min, max and the NaN test are exact in any order.
    """
    finite = 0.0
    n = x.shape[1]
    for row in range(x.shape[0]):
        a0 = x[row, 0]
        a1 = a0
        a2 = a0
        a3 = a0
        b0 = a0
        b1 = a0
        b2 = a0
        b3 = a0
        f0 = 0.0
        f1 = 0.0
        f2 = 0.0
        f3 = 0.0
        i = 0
        while i + 4 <= n:
            v0 = x[row, i]
            v1 = x[row, i + 1]
            v2 = x[row, i + 2]
            v3 = x[row, i + 3]
            f0 += v0 * 0.0  # NaN as soon as one value is NaN or infinite
            f1 += v1 * 0.0
            f2 += v2 * 0.0
            f3 += v3 * 0.0
            a0 = min(a0, v0)
            a1 = min(a1, v1)
            a2 = min(a2, v2)
            a3 = min(a3, v3)
            b0 = max(b0, v0)
            b1 = max(b1, v1)
            b2 = max(b2, v2)
            b3 = max(b3, v3)
            i += 4
        while i < n:
            f0 += x[row, i] * 0.0
            a0 = min(a0, x[row, i])
            b0 = max(b0, x[row, i])
            i += 1
        finite += (f0 + f1) + (f2 + f3)
        lo[row] = min(min(a0, a1), min(a2, a3))
        hi[row] = max(max(b0, b1), max(b2, b3))
    return finite == 0.0


def _power_of_two_scale(largest: np.ndarray) -> np.ndarray:
    """Per row, the power of two that brings ``max |x|`` into [0.5, 1).

    Both estimators are scale-free, and multiplying by a power of two is exact: values near the ends
    of the float range (|x| <= 1e-170 or >= 1e170, whose squares under- or overflow) get the same
    answer as any other scale, and ordinary values give bit-for-bit the unscaled result. The kernels
    apply it as they read the series (no scaled copy).
    """
    return np.ldexp(1.0, -np.frexp(largest)[1])


def _pick_entry(rows: int, work: float, serial, rows_parallel, scales_parallel):
    """Serial below the threading floor; otherwise rows split between threads, or a single series' scales."""
    if not use_threads(work):
        return serial
    return rows_parallel if rows > 1 else scales_parallel


def _check_default_span(n: int, smallest: int, max_fraction: int, name: str) -> int:
    largest = n // max_fraction
    if largest < MIN_SCALE_SPAN * smallest:
        need = MIN_SCALE_SPAN * smallest * max_fraction
        raise ValueError(
            f"{name}: too short for the default scales, {n} points but at least {need} are needed (scales "
            f"{smallest}..n//{max_fraction} must span a factor of {MIN_SCALE_SPAN}); pass explicit scales"
        )
    return largest


def default_dfa_scales(n: int, n_scales: int = 16, smallest: int = 8, max_fraction: int = DFA_MAX_FRACTION
                       ) -> np.ndarray:
    """Log-spaced integer scales from ``smallest`` to ``n // max_fraction``.

    Stopping at n/8 (at least 8 segments per direction) rather than n/4: on exact fGn with n = 4096
    the largest scales, with only 4-6 segments, double the spread of the estimate for no gain in
    bias (measured in the tests: std 0.014-0.024 with 8..512 against 0.022-0.042 with 16..1024).
    Raises ``ValueError`` when ``n`` is too short for the scales to span a factor of 2 (with the
    defaults, n < 128): fewer, closer scales gave NaN or H anywhere from -0.4 to 1.6.
    """
    largest = _check_default_span(n, smallest, max_fraction, "dfa input")
    return np.unique(np.round(np.logspace(np.log10(smallest), np.log10(largest), n_scales)).astype(np.int64))


def default_scales_min_length(smallest: int = 8) -> int:
    """Shortest series for which both default scale sets exist (DFA's n // 8 bound is the binding one)."""
    return MIN_SCALE_SPAN * smallest * max(DFA_MAX_FRACTION, RS_MAX_FRACTION)


def _prepare(x: object, name: str, min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The series as rows and each row's power-of-two scale; ``ValueError`` naming the fault on bad input.

    One pass over the data (finite, range per row) instead of one NumPy pass per check: on a long
    series the checks cost as much as the estimator.
    """
    arr = np.atleast_2d(as_float_array(x, name, (1, 2)))
    require_length(arr.shape[-1], min_len, name)
    lo = np.empty(arr.shape[0])
    hi = np.empty(arr.shape[0])
    if not _row_extents(arr, lo, hi):
        require_finite(arr, name)
    if np.any(lo == hi):
        require_not_constant(arr if np.ndim(x) == 2 else arr[0], name)
    return arr, _power_of_two_scale(np.maximum(np.abs(lo), np.abs(hi)))


def dfa(x: object, scales: object | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DFA-1 (q = 2) of increments ``x``: returns ``(hurst, scales, fluctuation)``.

    ``x`` is 1-D (one series) or 2-D (one series per row, processed in parallel); ``hurst`` has
    shape ``()`` or ``(rows,)`` and ``fluctuation`` ``(n_scales,)`` or ``(rows, n_scales)``.
    ``fluctuation[k]`` equals ``MFDFA.MFDFA(x, scales, q=2, order=1)[1][k, 0]`` and ``hurst`` is the
    least-squares slope of ``log F`` on ``log scales``.
    """
    arr, scale = _prepare(x, "dfa input", 2 * (DFA_MIN_SCALE + 1))
    n = arr.shape[1]
    sc = default_dfa_scales(n) if scales is None else as_scales(scales, "dfa scales", DFA_MIN_SCALE, n)
    fluct = np.empty((arr.shape[0], sc.size))
    hurst = np.empty(arr.shape[0])
    kernel_fn = _pick_entry(arr.shape[0], 2.5 * arr.size * sc.size, _dfa_serial, _dfa_parallel, _dfa_scales_parallel)
    kernel_fn(arr, scale, sc, np.log(sc.astype(np.float64)), fluct, hurst)
    fluct /= scale[:, None]
    if np.ndim(x) == 1:
        return hurst[0], sc, fluct[0]
    return hurst, sc, fluct


def hurst_dfa(x: object, scales: object | None = None) -> float | np.ndarray:
    """Hurst exponent by DFA-1; see :func:`dfa`."""
    return dfa(x, scales)[0]


# --------------------------------------------------------------------------------------------- R/S
@functools.lru_cache(maxsize=1024)
def expected_rs(n: int) -> float:
    """Anis-Lloyd expected (R/S)_n of white noise (Peters' large-n form above 340), as in nolds."""
    i = np.arange(1, n)
    back = float(np.sum(np.sqrt((n - i) / i)))
    if n <= 340:
        middle = math.gamma((n - 1) * 0.5) / math.sqrt(math.pi) / math.gamma(n * 0.5)
    else:
        middle = 1.0 / math.sqrt(n * math.pi * 0.5)
    return (n - 0.5) / n * middle * back


@kernel
def _rs_sums(x: np.ndarray, scale: float) -> tuple:
    """The mean of ``x * scale`` and the prefix sums of ``y = x * scale - mean`` and of ``y**2``.

    A subseries' sum and sum of squares are differences of them. Centring on the series' mean keeps
    the prefixes of the order of the series' own wandering, so the differences lose nothing to the
    level of the series.
    """
    mean = _mean(x, scale)
    prefix = np.empty(x.size + 1)
    squares = np.empty(x.size + 1)
    prefix[0] = 0.0
    squares[0] = 0.0
    acc = 0.0
    acc2 = 0.0
    for i in range(x.size):
        y = x[i] * scale - mean
        acc += y
        acc2 += y * y
        prefix[i + 1] = acc
        squares[i + 1] = acc2
    return mean, prefix, squares


@kernel
def _is_constant(x: np.ndarray, start: int, n: int) -> bool:
    for i in range(start + 1, start + n):
        if x[i] != x[start]:
            return False
    return True


# The sum of squared deviations of a subseries comes from the prefix sums as ``S_yy - n mean^2`` when
# that keeps enough digits: the subtraction and the prefix's own rounding cost about eps * S_yy(0..end)
# in absolute terms, so below this fraction of the prefix a subseries (nearly constant, or far from
# the series' mean) is summed directly instead (error then eps relative, as a two-pass variance).
RS_DIRECT_BELOW = 1e-6
# A directly summed subseries below this (times its length; inputs are scaled so that max |x| lies in
# [0.5, 1)) is checked value by value: a constant run leaves ~ n * 1e-32 of rounding.
RS_CONSTANT_SUSPECT = 1e-20


@kernel
def _squared_deviations(x: np.ndarray, scale: float, start: int, n: int, mean: float) -> float:
    """Sum of ``(x * scale - mean)**2`` over the subseries, element by element (``mean`` of ``x * scale``)."""
    total = 0.0
    for i in range(start, start + n):
        d = x[i] * scale - mean
        total += d * d
    return total


@kernel
def _rs_length(x: np.ndarray, scale: float, series_mean: float, prefix: np.ndarray, squares: np.ndarray,
               n: int) -> float:
    """(R/S)_n: mean over the subseries of length ``n`` cut from the start of R / S (ddof = 1).

    Sums from ``_rs_sums``. Per subseries the mean and S come from the prefix sums in O(1) (directly
    from the values when the difference would lose digits); one pass gives R, the range of the
    cumulative deviations ``prefix[start + i + 1] - (i + 1) * mean`` (prefix differences, so no
    running sum chains one element to the next; the constant ``prefix[start]`` drops out of the
    range). The pass keeps four independent max/min pairs, each over a fixed quarter of the elements:
    the latency chains overlap, and max/min are exact in any order, so the result is the same bits
    wherever the kernel runs (no ``fastmath``). Constant subseries are excluded, tested on the values:
    the mean of a constant non-zero run carries a rounding residue that would leave a tiny non-zero R
    and S (R/S ~ 1); their prefix difference is all rounding, so they always take the direct sum.
    """
    m = x.size // n
    acc = 0.0
    cnt = 0
    for seg in range(m):
        start = seg * n
        mean = (prefix[start + n] - prefix[start]) / n  # of y, the centred values
        ss = (squares[start + n] - squares[start]) - n * mean * mean
        if ss < RS_DIRECT_BELOW * squares[start + n]:
            ss = _squared_deviations(x, scale, start, n, mean + series_mean)
            if ss <= RS_CONSTANT_SUSPECT * n and _is_constant(x, start, n):
                continue
        hi0 = -np.inf
        hi1 = -np.inf
        hi2 = -np.inf
        hi3 = -np.inf
        lo0 = np.inf
        lo1 = np.inf
        lo2 = np.inf
        lo3 = np.inf
        fi = 0.0  # i as a float (whole numbers are exact): no int-to-float conversion per element
        i = start + 1
        while i + 4 <= start + n + 1:
            c0 = prefix[i] - (fi + 1.0) * mean
            c1 = prefix[i + 1] - (fi + 2.0) * mean
            c2 = prefix[i + 2] - (fi + 3.0) * mean
            c3 = prefix[i + 3] - (fi + 4.0) * mean
            hi0 = max(hi0, c0)
            hi1 = max(hi1, c1)
            hi2 = max(hi2, c2)
            hi3 = max(hi3, c3)
            lo0 = min(lo0, c0)
            lo1 = min(lo1, c1)
            lo2 = min(lo2, c2)
            lo3 = min(lo3, c3)
            fi += 4.0
            i += 4
        while i <= start + n:
            c0 = prefix[i] - (fi + 1.0) * mean
            hi0 = max(hi0, c0)
            lo0 = min(lo0, c0)
            fi += 1.0
            i += 1
        r = max(max(hi0, hi1), max(hi2, hi3)) - min(min(lo0, lo1), min(lo2, lo3))
        if r > 0.0 and ss > 0.0:
            acc += r / math.sqrt(ss / (n - 1))
            cnt += 1
    return acc / cnt if cnt > 0 else np.nan


@kernel(inline="always")
def _rs_fit(rsvals: np.ndarray, logn: np.ndarray, log_expected: np.ndarray, corrected: bool) -> float:
    y = np.log(rsvals)
    if corrected:
        y = y - log_expected
    slope = ols_slope(logn, y, np.isfinite(y))
    return slope + 0.5 if corrected else slope


@kernel
def _rs_row(x: np.ndarray, scale: float, nvals: np.ndarray, logn: np.ndarray, log_expected: np.ndarray,
            corrected: bool, rsvals: np.ndarray) -> float:
    mean, prefix, squares = _rs_sums(x, scale)
    for k in range(nvals.size):
        rsvals[k] = _rs_length(x, scale, mean, prefix, squares, nvals[k])
    return _rs_fit(rsvals, logn, log_expected, corrected)


@kernel
def _rs_serial(x: np.ndarray, scale: np.ndarray, nvals: np.ndarray, logn: np.ndarray, log_expected: np.ndarray,
               corrected: bool, rsvals: np.ndarray, hurst: np.ndarray) -> None:
    for row in range(x.shape[0]):
        hurst[row] = _rs_row(x[row], scale[row], nvals, logn, log_expected, corrected, rsvals[row])


@parallel_kernel
def _rs_parallel(x: np.ndarray, scale: np.ndarray, nvals: np.ndarray, logn: np.ndarray, log_expected: np.ndarray,
                 corrected: bool, rsvals: np.ndarray, hurst: np.ndarray) -> None:
    """Rows split between the threads (a batch of windows)."""
    for row in prange(x.shape[0]):
        hurst[row] = _rs_row(x[row], scale[row], nvals, logn, log_expected, corrected, rsvals[row])


@parallel_kernel
def _rs_lengths_parallel(x: np.ndarray, scale: np.ndarray, nvals: np.ndarray, logn: np.ndarray,
                         log_expected: np.ndarray, corrected: bool, rsvals: np.ndarray, hurst: np.ndarray) -> None:
    """One long series: its subseries lengths split between the threads (each is a full pass)."""
    mean, prefix, squares = _rs_sums(x[0], scale[0])
    for k in prange(nvals.size):
        rsvals[0, k] = _rs_length(x[0], scale[0], mean, prefix, squares, nvals[k])
    hurst[0] = _rs_fit(rsvals[0], logn, log_expected, corrected)


def default_rs_nvals(n: int, n_values: int = 12, smallest: int = 8) -> np.ndarray:
    """Log-spaced integer subseries lengths from ``smallest`` to ``n // 4`` (at least 4 subseries).

    Raises ``ValueError`` when the lengths cannot span a factor of 2 (with the defaults, n < 64).
    """
    largest = _check_default_span(n, smallest, RS_MAX_FRACTION, "rs input")
    return np.unique(np.round(np.logspace(np.log10(smallest), np.log10(largest), n_values)).astype(np.int64))


def rescaled_range(x: object, nvals: object | None = None, corrected: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R/S analysis of ``x``: returns ``(hurst, nvals, rs)`` with ``rs[k] = (R/S)_{nvals[k]}``.

    Same conventions as ``nolds.hurst_rs(x, nvals, fit="poly", corrected=corrected, unbiased=True)``:
    subseries are cut from the start, the tail is dropped, constant subseries are excluded, and with the
    Anis-Lloyd correction the fit is on ``log (R/S)_n - log E[(R/S)_n]`` and ``hurst = slope + 0.5``.
    """
    arr, scale = _prepare(x, "rs input", 2 * (RS_MIN_N + 1))
    n = arr.shape[1]
    nv = default_rs_nvals(n) if nvals is None else as_scales(nvals, "rs nvals", RS_MIN_N, n)
    log_expected = np.log(np.array([expected_rs(int(v)) for v in nv]))
    rsvals = np.empty((arr.shape[0], nv.size))
    hurst = np.empty(arr.shape[0])
    kernel_fn = _pick_entry(arr.shape[0], 2.0 * arr.size * nv.size, _rs_serial, _rs_parallel, _rs_lengths_parallel)
    kernel_fn(arr, scale, nv, np.log(nv.astype(np.float64)), log_expected, bool(corrected), rsvals, hurst)
    if np.ndim(x) == 1:
        return hurst[0], nv, rsvals[0]
    return hurst, nv, rsvals


def hurst_rs(x: object, nvals: object | None = None, corrected: bool = True) -> float | np.ndarray:
    """Hurst exponent by rescaled range; see :func:`rescaled_range`."""
    return rescaled_range(x, nvals, corrected)[0]


def sliding_windows(x: object, window: int, step: int) -> np.ndarray:
    """Rows ``x[k*step : k*step + window]`` as a read-only 2-D view (feed it to the 2-D estimators)."""
    arr = as_float_array(x, "series", (1,))
    if window < 1 or step < 1:
        raise ValueError(f"window and step must be positive, got window={window}, step={step}")
    require_length(arr.size, window, "series")
    view = np.lib.stride_tricks.sliding_window_view(arr, window)[::step]
    return view
