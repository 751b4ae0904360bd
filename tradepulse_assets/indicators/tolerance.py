"""Tolerance gate between a session's features before and after a backfill.

Why: consumers may resume only if a backfill moved the features within what they tolerate.
Windows are fixed and causal, so a window that contains no revised bar must come out bit for bit
the same (checked to ``1e-12``; anything else is a bug or a changed input outside the revision),
while a window that contains a revised bar may move, by at most ``tolerance`` (absolute).
Per-symbol Hurst exponents use the whole session, so any revision touches them: they are compared
with ``tolerance`` whenever ``revised_ts`` is not empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

from .features import UNTOUCHED_TOLERANCE, SessionFeatures


@dataclass(frozen=True)
class ToleranceEntry:
    feature: str  # e.g. "kuramoto.r", "ricci_edges.ollivier", "hurst.dfa"
    window_end: datetime | None
    key: str  # symbol, "source|target" for edges, "" for window-level values
    baseline: float | None
    current: float | None
    abs_diff: float
    touched_by_revision: bool

    def to_dict(self) -> dict:
        def num(x: float | None) -> float | str | None:
            if x is None or (isinstance(x, float) and math.isnan(x)):
                return None
            return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")

        return {
            "feature": self.feature,
            "window_end": self.window_end.isoformat() if self.window_end is not None else None,
            "key": self.key,
            "baseline": num(self.baseline),
            "current": num(self.current),
            "abs_diff": num(self.abs_diff),
            "touched_by_revision": self.touched_by_revision,
        }


@dataclass(frozen=True)
class ToleranceReport:
    """``outside``: every value beyond its bound; ``changed``: every touched value with its move."""

    passed: bool
    tolerance: float
    untouched_tolerance: float
    n_compared: int
    n_touched: int
    n_outside: int
    n_untouched_changed: int
    outside: list[ToleranceEntry] = field(default_factory=list)
    changed: list[ToleranceEntry] = field(default_factory=list)

    def to_metadata(self, max_rows: int = 50) -> dict:
        """JSON-able summary for asset-check metadata (row lists capped at ``max_rows``)."""
        max_change = max((e.abs_diff for e in self.changed if math.isfinite(e.abs_diff)), default=0.0)
        return {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "untouched_tolerance": self.untouched_tolerance,
            "n_compared": self.n_compared,
            "n_touched": self.n_touched,
            "n_outside": self.n_outside,
            "n_untouched_changed": self.n_untouched_changed,
            "max_touched_abs_diff": max_change,
            "outside": [e.to_dict() for e in self.outside[:max_rows]],
            "outside_truncated": len(self.outside) > max_rows,
            "changed": [e.to_dict() for e in self.changed[:max_rows]],
            "changed_truncated": len(self.changed) > max_rows,
        }


def _abs_diff(b: float | None, c: float | None) -> float:
    if b is None or c is None:
        return math.inf
    if math.isnan(b) and math.isnan(c):
        return 0.0
    if math.isnan(b) or math.isnan(c):
        return math.inf
    return abs(b - c)


def _touched(starts: np.ndarray, ends: np.ndarray, revised: np.ndarray) -> np.ndarray:
    """Window i is touched if some revised minute t has starts[i] <= t <= ends[i] (bar labels)."""
    if revised.size == 0 or starts.size == 0:
        return np.zeros(starts.size, dtype=bool)
    rev = np.sort(revised)
    first = np.searchsorted(rev, starts, side="left")
    return (first < rev.size) & (rev[np.minimum(first, rev.size - 1)] <= ends)


def _us(col: pl.Series) -> np.ndarray:
    return col.dt.replace_time_zone(None).cast(pl.Datetime("us")).to_numpy().astype("datetime64[us]").astype(np.int64)


def _window_rows(base: pl.DataFrame, cur: pl.DataFrame, values: list[str], revised: np.ndarray, prefix: str
                 ) -> tuple[list[ToleranceEntry], dict[datetime, bool]]:
    """Entries for window-level values, matched on window_end, and the touched flag of each window."""
    joined = base.join(cur, on="window_end", how="full", suffix="_cur", coalesce=True).sort("window_end")
    start = joined["window_start"].fill_null(joined["window_start_cur"])
    touched = _touched(_us(start), _us(joined["window_end"]), revised)
    entries = []
    flags: dict[datetime, bool] = {}
    for i, row in enumerate(joined.iter_rows(named=True)):
        flags[row["window_end"]] = bool(touched[i])
        for v in values:
            b, c = row[v], row[f"{v}_cur"]
            b = None if b is None else float(b)
            c = None if c is None else float(c)
            entries.append(ToleranceEntry(f"{prefix}.{v}", row["window_end"], "", b, c, _abs_diff(b, c), bool(touched[i])))
    return entries, flags


def _edge_rows(base: pl.DataFrame, cur: pl.DataFrame, flags: dict[datetime, bool]) -> list[ToleranceEntry]:
    joined = base.join(cur, on=["window_end", "source", "target"], how="full", suffix="_cur", coalesce=True)
    entries = []
    for row in joined.sort(["window_end", "source", "target"]).iter_rows(named=True):
        touched = flags.get(row["window_end"], False)
        key = f"{row['source']}|{row['target']}"
        for v in ("ollivier", "forman"):
            b, c = row[v], row[f"{v}_cur"]
            entries.append(ToleranceEntry(f"ricci_edges.{v}", row["window_end"], key, b, c, _abs_diff(b, c), touched))
    return entries


def _hurst_rows(base: pl.DataFrame, cur: pl.DataFrame, touched: bool, session_end: datetime | None
                ) -> list[ToleranceEntry]:
    joined = base.join(cur, on="symbol", how="full", suffix="_cur", coalesce=True).sort("symbol")
    entries = []
    for row in joined.iter_rows(named=True):
        for v in ("dfa", "rs"):
            b, c = row[v], row[f"{v}_cur"]
            entries.append(ToleranceEntry(f"hurst.{v}", session_end, row["symbol"], b, c, _abs_diff(b, c), touched))
    return entries


def compare_to_baseline(baseline: SessionFeatures, current: SessionFeatures, revised_ts: np.ndarray,
                        tolerance: float = 0.005, per_feature: Mapping[str, float] | None = None) -> ToleranceReport:
    """Check ``current`` against ``baseline`` given the revised bar minutes (datetime64, UTC).

    Untouched windows must agree to 1e-12; touched windows and the whole-session Hurst values to
    ``tolerance``, or ``per_feature[name]`` for the features named there (e.g. ``"ricci_edges.forman"``:
    Forman curvature is unbounded, so one absolute bound cannot serve it and Kuramoto's R in [0, 1] alike).
    A value present on one side only (a window or an edge appearing or disappearing)
    counts as an infinite difference. Pass :func:`effective_revisions` output when bars were missing
    before, so forward-filled minutes count as revised too.
    """
    per_feature = dict(per_feature or {})
    for name, bound in {"tolerance": tolerance, **per_feature}.items():
        if not bound >= 0:
            raise ValueError(f"{name}: tolerance must be a non-negative number, got {bound!r}")
    if baseline.params != current.params:
        raise ValueError(f"baseline and current were computed with different parameters: "
                         f"{baseline.params.to_dict()} vs {current.params.to_dict()}")
    revised = np.asarray(revised_ts).astype("datetime64[us]").astype(np.int64).ravel()
    k_entries, _ = _window_rows(baseline.kuramoto, current.kuramoto, ["r"], revised, "kuramoto")
    r_entries, flags = _window_rows(baseline.ricci, current.ricci, ["ollivier_mean", "forman_mean"], revised, "ricci")
    e_entries = _edge_rows(baseline.ricci_edges, current.ricci_edges, flags)
    h_entries = _hurst_rows(baseline.hurst, current.hurst, revised.size > 0, current.session_end)
    entries = k_entries + r_entries + e_entries + h_entries
    outside, changed = [], []
    n_untouched_changed = 0
    for e in entries:
        bound = per_feature.get(e.feature, tolerance) if e.touched_by_revision else UNTOUCHED_TOLERANCE
        if e.touched_by_revision:
            changed.append(e)
        if not e.abs_diff <= bound:
            outside.append(e)
            if not e.touched_by_revision:
                n_untouched_changed += 1
    return ToleranceReport(
        passed=not outside,
        tolerance=float(tolerance),
        untouched_tolerance=UNTOUCHED_TOLERANCE,
        n_compared=len(entries),
        n_touched=len(changed),
        n_outside=len(outside),
        n_untouched_changed=n_untouched_changed,
        outside=outside,
        changed=changed,
    )
