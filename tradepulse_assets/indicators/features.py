"""Session features for the Dagster assets: Kuramoto, Ricci and Hurst on one trading session.

Why this layer: the assets need one pure call per (market, session) partition that turns the
session's close matrix into tidy polars frames, and one pure call that decides whether a backfill
moved the features more than consumers tolerate. Both live here so they are tested without Dagster.

Missing bars: the caller passes the session's full expected-minute grid (``calendar.minutes``) with
NaN where a bar is missing. Prices are forward-filled within the session (a missing minute keeps the
last price, i.e. a zero return); bars before a symbol's first price stay missing and that symbol is
left out of every window that contains them and out of its Hurst estimate's leading part. Because the
window grid is anchored at the first expected minute, a re-run after a backfill has the same windows.
Note that forward fill carries a revised price into the following missing minutes: use
:func:`effective_revisions` to get every minute whose effective price changed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

from ._jit import run_split
from .hurst import default_dfa_scales, default_rs_nvals, default_scales_min_length, dfa, rescaled_range
from .kuramoto import kuramoto_core, window_starts
from .ricci import RicciResult, graph_from_correlation, ricci_from_graph

UNTOUCHED_TOLERANCE = 1e-12


@dataclass(frozen=True)
class FeatureParams:
    """Every parameter of the session features; stored with the results (``to_dict``)."""

    kuramoto_window: int = 64  # bars per window (63 log returns)
    kuramoto_step: int = 64  # non-overlapping: a revised bar touches exactly one window
    ricci_window: int = 128
    ricci_step: int = 64
    ricci_threshold: float = 0.5  # edges: MST plus pairs with correlation above this ...
    ricci_max_neighbours: int | None = 5  # ... among either end's 5 most correlated (None: no cap)
    ricci_alpha: float = 0.5  # Ollivier idleness
    hurst_min_scale: int = 8  # smallest DFA scale / R-S subseries length
    hurst_n_scales: int = 10  # log-spaced up to n_returns // 8 (DFA) and n_returns // 4 (R/S)

    def __post_init__(self) -> None:
        if self.kuramoto_window < 4 or self.ricci_window < 4:
            raise ValueError(f"windows too short: kuramoto_window={self.kuramoto_window}, ricci_window={self.ricci_window}")
        if self.kuramoto_step < 1 or self.ricci_step < 1:
            raise ValueError(f"steps must be positive: kuramoto_step={self.kuramoto_step}, ricci_step={self.ricci_step}")
        if not -1.0 <= self.ricci_threshold <= 1.0 or not 0.0 <= self.ricci_alpha <= 1.0:
            raise ValueError(f"ricci_threshold must lie in [-1, 1] and ricci_alpha in [0, 1], got "
                             f"{self.ricci_threshold}, {self.ricci_alpha}")
        if self.ricci_max_neighbours is not None and self.ricci_max_neighbours < 1:
            raise ValueError(f"ricci_max_neighbours must be >= 1 or None, got {self.ricci_max_neighbours}")
        if self.hurst_min_scale < 3 or self.hurst_n_scales < 2:
            raise ValueError(f"hurst_min_scale must be >= 3 and hurst_n_scales >= 2, got "
                             f"{self.hurst_min_scale}, {self.hurst_n_scales}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SessionFeatures:
    """Feature frames of one session (timestamps UTC, bar labels: a window covers [window_start, window_end + 1 min))."""

    kuramoto: pl.DataFrame  # window_start, window_end, r, n_symbols
    ricci: pl.DataFrame  # window_start, window_end, ollivier_mean, forman_mean, n_edges, n_symbols
    ricci_edges: pl.DataFrame  # window_end, source, target, ollivier, forman
    hurst: pl.DataFrame  # symbol, dfa, rs, n_returns
    params: FeatureParams = field(default_factory=FeatureParams)
    session_start: datetime | None = None
    session_end: datetime | None = None


# ------------------------------------------------------------------------------------------- input
def _validate_inputs(close: object, ts: object, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(close, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"close: expected a 2-D array (minutes x symbols), got shape {arr.shape}")
    t = np.asarray(ts)
    if t.ndim != 1 or t.shape[0] != arr.shape[0]:
        raise ValueError(f"ts: expected {arr.shape[0]} timestamps (one per row of close), got shape {t.shape}")
    if not np.issubdtype(t.dtype, np.datetime64):
        raise ValueError(f"ts: expected datetime64 values, got dtype {t.dtype}")
    t = t.astype("datetime64[us]")
    if t.size > 1 and np.any(np.diff(t.astype(np.int64)) <= 0):
        bad = int(np.flatnonzero(np.diff(t.astype(np.int64)) <= 0)[0])
        raise ValueError(f"ts: must be strictly increasing, row {bad + 1} ({t[bad + 1]}) is not after {t[bad]}")
    if len(symbols) != arr.shape[1]:
        raise ValueError(f"symbols: {len(symbols)} names for {arr.shape[1]} columns of close")
    if len(set(symbols)) != len(symbols):
        dup = sorted({s for s in symbols if symbols.count(s) > 1})
        raise ValueError(f"symbols: duplicate names {dup[:10]}")
    if np.isinf(arr).any():
        raise ValueError(f"close: {int(np.isinf(arr).sum())} infinite price(s)")
    bad = np.nan_to_num(arr, nan=1.0) <= 0
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"close: non-positive price {arr[r, c]} for {symbols[c]} at {t[r]}; log returns need prices > 0")
    return arr, t


def forward_fill(close: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs down each column; leading NaNs stay NaN."""
    valid = ~np.isnan(close)
    idx = np.where(valid, np.arange(close.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.take_along_axis(close, idx, axis=0)
    filled[np.cumsum(valid, axis=0) == 0] = np.nan
    return filled


def effective_revisions(close_before: object, close_after: object, ts: object) -> np.ndarray:
    """Minutes whose forward-filled price differs between two versions of a session (bit for bit)."""
    a = forward_fill(np.asarray(close_before, dtype=np.float64))
    b = forward_fill(np.asarray(close_after, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"close_before {a.shape} and close_after {b.shape} must have the same shape")
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.asarray(ts).astype("datetime64[us]")[~same.all(axis=1)]


# ---------------------------------------------------------------------------------------- features
def _utc(values: np.ndarray) -> pl.Series:
    return pl.Series(values.astype("datetime64[us]")).dt.replace_time_zone("UTC")


def _kuramoto_frame(log_close: np.ndarray, t: np.ndarray, p: FeatureParams) -> pl.DataFrame:
    res = kuramoto_core(log_close, p.kuramoto_window, p.kuramoto_step)
    r = np.where(res.n_symbols >= 2, res.r, np.nan)
    return pl.DataFrame({
        "window_start": _utc(t[res.start]),
        "window_end": _utc(t[res.end]),
        "r": pl.Series(r, dtype=pl.Float64),
        "n_symbols": pl.Series(res.n_symbols, dtype=pl.Int64),
    })


@dataclass(frozen=True)
class _RicciWindow:
    start: int
    end: int
    n_symbols: int
    names: np.ndarray | None = None  # symbols of the graph's nodes
    result: RicciResult | None = None  # None: fewer than 3 usable symbols


def _ricci_window(log_close: np.ndarray, t: np.ndarray, symbols: list[str], s: int, p: FeatureParams) -> _RicciWindow:
    """Correlation graph and curvatures of the window of bars ``[s, s + ricci_window)``."""
    e = s + p.ricci_window - 1
    rets = np.diff(log_close[s:e + 1], axis=0)
    keep = np.flatnonzero(np.isfinite(rets).all(axis=0) & (np.ptp(rets, axis=0) > 0))
    if keep.size < 3:
        return _RicciWindow(s, e, int(keep.size))
    rho = np.corrcoef(rets[:, keep], rowvar=False)
    try:
        graph = graph_from_correlation(rho, p.ricci_threshold, p.ricci_max_neighbours)
    except ValueError as exc:
        raise ValueError(f"ricci window {t[s]}..{t[e]}: {exc} (symbols {[symbols[k] for k in keep][:10]}...)") from exc
    names = np.asarray(symbols, dtype=object)[keep]
    return _RicciWindow(s, e, int(keep.size), names, ricci_from_graph(graph, p.ricci_alpha))


def _ricci_frames(windows: list[_RicciWindow], t: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = {"window_start": [], "window_end": [], "ollivier_mean": [], "forman_mean": [], "n_edges": [], "n_symbols": []}
    edges = {"window_end": [], "source": [], "target": [], "ollivier": [], "forman": []}
    for w in windows:
        rows["window_start"].append(t[w.start])
        rows["window_end"].append(t[w.end])
        rows["n_symbols"].append(w.n_symbols)
        res = w.result
        if res is None:
            rows["ollivier_mean"].append(math.nan)
            rows["forman_mean"].append(math.nan)
            rows["n_edges"].append(0)
            continue
        rows["ollivier_mean"].append(float(res.ollivier.mean()))
        rows["forman_mean"].append(float(res.forman.mean()))
        rows["n_edges"].append(res.n_edges)
        edges["window_end"].extend([t[w.end]] * res.n_edges)
        edges["source"].extend(w.names[res.graph.source].tolist())
        edges["target"].extend(w.names[res.graph.target].tolist())
        edges["ollivier"].extend(res.ollivier.tolist())
        edges["forman"].extend(res.forman.tolist())
    ricci = pl.DataFrame({
        "window_start": _utc(np.array(rows["window_start"], dtype="datetime64[us]")),
        "window_end": _utc(np.array(rows["window_end"], dtype="datetime64[us]")),
        "ollivier_mean": pl.Series(rows["ollivier_mean"], dtype=pl.Float64),
        "forman_mean": pl.Series(rows["forman_mean"], dtype=pl.Float64),
        "n_edges": pl.Series(rows["n_edges"], dtype=pl.Int64),
        "n_symbols": pl.Series(rows["n_symbols"], dtype=pl.Int64),
    })
    ricci_edges = pl.DataFrame({
        "window_end": _utc(np.array(edges["window_end"], dtype="datetime64[us]")),
        "source": pl.Series(edges["source"], dtype=pl.String),
        "target": pl.Series(edges["target"], dtype=pl.String),
        "ollivier": pl.Series(edges["ollivier"], dtype=pl.Float64),
        "forman": pl.Series(edges["forman"], dtype=pl.Float64),
    })
    return ricci, ricci_edges


def _hurst_frame(log_close: np.ndarray, symbols: list[str], p: FeatureParams) -> pl.DataFrame:
    """DFA and R/S per symbol over the session, one batched kernel call per distinct series length.

    Symbols whose first price comes at the same minute have equally long return series and share a
    2-D call: a universe of thousands of symbols costs a handful of calls, not two per symbol.
    """
    n_sym = log_close.shape[1]
    finite = np.isfinite(log_close)
    first = np.where(finite.any(axis=0), np.argmax(finite, axis=0), log_close.shape[0])
    n_rets = np.maximum(log_close.shape[0] - first - 1, 0)
    dfa_vals = np.full(n_sym, np.nan)
    rs_vals = np.full(n_sym, np.nan)
    min_length = default_scales_min_length(p.hurst_min_scale)
    for length in np.unique(n_rets):
        if length < min_length:
            continue
        cols = np.flatnonzero(n_rets == length)
        rets = np.diff(log_close[-(length + 1):, cols], axis=0).T  # rows: symbols
        varying = np.ptp(rets, axis=1) > 0
        if not varying.any():
            continue
        rows = np.ascontiguousarray(rets[varying])
        scales = default_dfa_scales(int(length), p.hurst_n_scales, p.hurst_min_scale)
        nvals = default_rs_nvals(int(length), p.hurst_n_scales, p.hurst_min_scale)
        dfa_vals[cols[varying]] = dfa(rows, scales)[0]
        rs_vals[cols[varying]] = rescaled_range(rows, nvals)[0]
    return pl.DataFrame({
        "symbol": pl.Series(symbols, dtype=pl.String),
        "dfa": pl.Series(dfa_vals, dtype=pl.Float64),
        "rs": pl.Series(rs_vals, dtype=pl.Float64),
        "n_returns": pl.Series(n_rets, dtype=pl.Int64),
    })


def compute_session_features(close: np.ndarray, ts: np.ndarray, symbols: list[str],
                             params: FeatureParams | None = None) -> SessionFeatures:
    """Kuramoto, Ricci and Hurst features of one session (``close``: minutes x symbols, NaN = missing bar).

    Work is split per window: every Ricci window, the Kuramoto windows and the Hurst batch are
    independent tasks, run side by side on the configured numba threads when the session is large
    enough to repay it (``_jit.run_split``), in order otherwise. Results do not depend on the split.
    """
    p = params or FeatureParams()
    names = list(symbols)
    arr, t = _validate_inputs(close, ts, names)
    with np.errstate(invalid="ignore"):
        log_close = np.log(forward_fill(arr))
    starts = window_starts(log_close.shape[0], p.ricci_window, p.ricci_step)
    tasks = [functools.partial(_ricci_window, log_close, t, names, int(s), p) for s in starts]
    tasks += [functools.partial(_kuramoto_frame, log_close, t, p), functools.partial(_hurst_frame, log_close, names, p)]
    work = float(starts.size) * arr.shape[1] ** 2 * p.ricci_window  # the correlation matrices alone, ~1 ns a term
    *windows, kuramoto, hurst = run_split(tasks, work)
    ricci, ricci_edges = _ricci_frames(windows, t)
    return SessionFeatures(
        kuramoto=kuramoto,
        ricci=ricci,
        ricci_edges=ricci_edges,
        hurst=hurst,
        params=p,
        session_start=t[0].astype(datetime) if t.size else None,
        session_end=t[-1].astype(datetime) if t.size else None,
    )
