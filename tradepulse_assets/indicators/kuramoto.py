"""Kuramoto order parameter of a market on fixed causal windows.

Why windows: Hilbert phases are global, so one revised bar moves every phase of a series
(by more than 1e-6 across the whole series, measured). Computing phases per fixed window makes the value for a window depend only on the
bars inside it, so a backfill changes exactly the windows that contain revised bars and nothing
else, bit for bit. The window grid is anchored to the first bar of the array (pass the session's
full expected-minute grid, NaN for missing bars) so a re-run after a backfill has the same windows.

Per window ``[start, start + window)`` of bars and per symbol: log returns inside the window
(``window - 1`` of them), linearly detrended, analytic signal by FFT (as ``scipy.signal.hilbert``),
phase ``theta_j(t)``; ``R(t) = |mean_j exp(i theta_j(t))|`` over the symbols with a defined phase,
and the window's value is the mean of ``R(t)`` over its returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from ._jit import kernel, parallel_kernel, use_threads
from ._validate import as_float_array, require_finite, require_length

DEFAULT_WINDOW = 64
DEFAULT_STEP = 64
MIN_WINDOW = 4  # 3 returns: a linear detrend of 2 returns leaves zeros, so no phase is defined


def detrend_linear(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Subtract the least-squares line along ``axis`` (``scipy.signal.detrend(type="linear")``)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    stt = float(t @ t)
    mean = x.mean(axis=-1, keepdims=True)
    slope = (x @ t)[..., None] / stt if stt > 0 else np.zeros_like(mean)
    return np.moveaxis(x - mean - slope * t, -1, axis)


def _hilbert_multiplier(n: int) -> np.ndarray:
    """``-i sign(f)`` on the rfft frequencies: the Hilbert transform's imaginary-part filter."""
    h = np.full(n // 2 + 1, -1j)
    h[0] = 0.0
    if n % 2 == 0:
        h[-1] = 0.0
    return h


def hilbert_imag(x: np.ndarray) -> np.ndarray:
    """Imaginary part of the analytic signal along the last axis (real FFTs only)."""
    n = x.shape[-1]
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum *= _hilbert_multiplier(n)
    return np.fft.irfft(spectrum, n=n, axis=-1)


def analytic_signal(x: object, axis: int = -1) -> np.ndarray:
    """FFT analytic signal ``x + i H[x]``, equal to ``scipy.signal.hilbert(x, axis=axis)`` to rounding."""
    arr = np.moveaxis(as_float_array(x, "analytic_signal input", (1, 2, 3)), axis, -1)
    return np.moveaxis(arr + 1j * hilbert_imag(arr), -1, axis)


def phases(x: object, axis: int = -1) -> np.ndarray:
    """Instantaneous phase of the linearly detrended series: ``angle(hilbert(detrend(x)))``."""
    arr = as_float_array(x, "phases input", (1, 2, 3))
    return np.angle(analytic_signal(detrend_linear(arr, axis), axis))


def order_parameter(theta: object, axis: int = -1) -> np.ndarray:
    """``|mean exp(i theta)|`` along ``axis`` (the symbol axis)."""
    return np.abs(np.mean(np.exp(1j * np.asarray(theta, dtype=np.float64)), axis=axis))


def window_starts(n_bars: int, window: int, step: int) -> np.ndarray:
    """First bar of every complete window on the grid anchored at bar 0."""
    if window < MIN_WINDOW or step < 1:
        raise ValueError(f"kuramoto window must be >= {MIN_WINDOW} bars (a linear detrend of fewer than 3 returns "
                         f"leaves no phase) and step >= 1, got window={window}, step={step}")
    if n_bars < window:
        return np.empty(0, dtype=np.int64)
    return np.arange(0, n_bars - window + 1, step, dtype=np.int64)


@kernel
def _detrend_window(log_close: np.ndarray, s0: int, n_t: int, out: np.ndarray) -> None:
    """out[j, :] = linearly detrended log returns of symbol j in the window from bar s0 (one fused pass)."""
    centre = (n_t - 1) / 2.0
    stt = n_t * (n_t * n_t - 1.0) / 12.0
    for j in range(log_close.shape[1]):
        row = out[j]
        sy = 0.0
        sty = 0.0
        for t in range(n_t):
            v = log_close[s0 + t + 1, j] - log_close[s0 + t, j]
            row[t] = v
            sy += v
            sty += (t - centre) * v
        mean = sy / n_t
        slope = sty / stt
        for t in range(n_t):
            row[t] = row[t] - mean - slope * (t - centre)


@kernel
def _detrend_serial(log_close: np.ndarray, starts: np.ndarray, n_t: int, out: np.ndarray) -> None:
    for k in range(starts.size):
        _detrend_window(log_close, starts[k], n_t, out[k])


@parallel_kernel
def _detrend_parallel(log_close: np.ndarray, starts: np.ndarray, n_t: int, out: np.ndarray) -> None:
    for k in prange(starts.size):
        _detrend_window(log_close, starts[k], n_t, out[k])


@kernel
def _order_window(re: np.ndarray, im: np.ndarray) -> tuple:
    """re/im: (symbols, T). Mean over t of |mean_j z/|z||, skipping undefined phases; and who took part."""
    n_sym, n_t = re.shape
    sc = np.zeros(n_t)
    ss = np.zeros(n_t)
    cnt = np.zeros(n_t, dtype=np.int64)
    used = 0
    for j in range(n_sym):
        any_def = False
        for t in range(n_t):
            a = re[j, t]
            b = im[j, t]
            mod = np.sqrt(a * a + b * b)
            if mod > 0.0 and np.isfinite(mod):
                sc[t] += a / mod
                ss[t] += b / mod
                cnt[t] += 1
                any_def = True
        if any_def:
            used += 1
    total = 0.0
    n_def = 0
    for t in range(n_t):
        if cnt[t] > 0:
            total += np.sqrt(sc[t] * sc[t] + ss[t] * ss[t]) / cnt[t]
            n_def += 1
    return (total / n_def if n_def > 0 else np.nan), used


@kernel
def _order_serial(re: np.ndarray, im: np.ndarray, r_out: np.ndarray, n_out: np.ndarray) -> None:
    for k in range(re.shape[0]):
        r_out[k], n_out[k] = _order_window(re[k], im[k])


@parallel_kernel
def _order_parallel(re: np.ndarray, im: np.ndarray, r_out: np.ndarray, n_out: np.ndarray) -> None:
    for k in prange(re.shape[0]):
        r_out[k], n_out[k] = _order_window(re[k], im[k])


@dataclass(frozen=True)
class KuramotoResult:
    """Per-window order parameter; ``start``/``end`` are bar indices (``end`` inclusive)."""

    start: np.ndarray
    end: np.ndarray
    r: np.ndarray
    n_symbols: np.ndarray
    window: int
    step: int


def kuramoto_core(log_close: np.ndarray, window: int, step: int) -> KuramotoResult:
    """Windows over ``log_close`` (bars x symbols); NaN bars make that symbol undefined in that window."""
    n_bars = log_close.shape[0]
    starts = window_starts(n_bars, window, step)
    if starts.size == 0:
        empty = np.empty(0)
        return KuramotoResult(starts, starts.copy(), empty, np.empty(0, dtype=np.int64), window, step)
    x = np.empty((starts.size, log_close.shape[1], window - 1))
    threads = use_threads(8.0 * x.size)
    (_detrend_parallel if threads else _detrend_serial)(np.ascontiguousarray(log_close, dtype=np.float64), starts,
                                                        window - 1, x)
    im = hilbert_imag(x)
    r = np.empty(starts.size)
    n_sym = np.empty(starts.size, dtype=np.int64)
    (_order_parallel if threads else _order_serial)(x, im, r, n_sym)
    return KuramotoResult(starts, starts + window - 1, r, n_sym, window, step)


def kuramoto_order(close: object, window: int = DEFAULT_WINDOW, step: int = DEFAULT_STEP) -> KuramotoResult:
    """Kuramoto order parameter of ``close`` (bars x symbols, positive prices) on fixed causal windows."""
    arr = as_float_array(close, "close", (2,))
    require_finite(arr, "close")
    if np.any(arr <= 0):
        raise ValueError(f"close: {int((arr <= 0).sum())} non-positive price(s); log returns need prices > 0")
    require_length(arr.shape[1], 2, "close", "symbols")
    require_length(arr.shape[0], window, "close", "bars (one window)")
    flat = np.flatnonzero(np.ptp(arr, axis=0) == 0)
    if flat.size:
        raise ValueError(f"close: constant series in column(s) {flat[:10].tolist()}; a phase needs price variation")
    return kuramoto_core(np.log(arr), window, step)
