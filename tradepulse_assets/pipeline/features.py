"""Indicator features of a production session, their pre-incident baselines and the tolerance gate.

Features are stored per table in the lake (``lake/features/<table>/market=M/session=D``). A baseline is a
byte copy of those partitions and of the production bars they came from, taken when an incident opens,
under ``baselines/<incident>/``; the tolerance gate recomputes, finds the revised bars by diffing the
production bars against the baseline's, and asks ``indicators.compare_to_baseline`` which windows moved.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tradepulse_assets.markets import Market, calendar_for
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.object_store import ObjectNotFound, ObjectStore

# The numba kernels (and scipy) load when a feature is first computed, not with the code location: about
# half a second of every start. Hence the imports inside the functions below.
if TYPE_CHECKING:
    from tradepulse_assets.indicators.features import FeatureParams, SessionFeatures
    from tradepulse_assets.indicators.tolerance import ToleranceReport

FEATURE_TABLES = ("kuramoto", "ricci", "ricci_edges", "hurst")
# Forman curvature is unbounded (about -2 x degree x weight, ~ -30 on a 24-symbol market): the absolute
# tolerance that suits R in [0, 1] would flag every touched edge. These bounds are ~0.5 % of its size.
FEATURE_TOLERANCES = {"ricci.forman_mean": 0.15, "ricci_edges.forman": 0.15}
BASELINE_ROOT = "baselines"


def close_matrix(
    bars: pl.DataFrame, market: Market, session: dt.date, symbols: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Close prices on the session's full minute grid (minutes x symbols, NaN where a bar is missing)."""
    minutes = calendar_for(market.market_id, market.calendar).minutes(session)
    grid = pl.DataFrame({"ts": pl.Series(minutes).dt.replace_time_zone("UTC")})
    wide = bars.select("ts", "symbol", "close").pivot(on="symbol", index="ts", values="close", aggregate_function="last")
    symbols = symbols or sorted(c for c in wide.columns if c != "ts")
    joined = grid.join(wide, on="ts", how="left")
    matrix = joined.select(pl.col(s) if s in joined.columns else pl.lit(None, pl.Float64).alias(s) for s in symbols)
    return matrix.to_numpy().astype(np.float64), minutes, symbols


def compute(store: ObjectStore, market: Market, session: dt.date, params: FeatureParams | None = None) -> SessionFeatures:
    from tradepulse_assets.indicators.features import compute_session_features

    bars = lake.read_frame(store, "production", market.market_id, session)
    close, minutes, symbols = close_matrix(bars, market, session)
    features = compute_session_features(close, minutes, symbols, params)
    for table in FEATURE_TABLES:
        lake.write_frame(store, lake.feature_layer(table), market.market_id, session, getattr(features, table))
    return features


def _frame_key(prefix: str, layer: str, market: str, session: dt.date) -> str:
    return f"{prefix}/{lake.partition_key(layer, market, session)}"


def baseline_prefix(incident_id: str) -> str:
    return f"{BASELINE_ROOT}/{incident_id}"


def snapshot_baseline(store: ObjectStore, incident_id: str, market_id: str, session: dt.date) -> bool:
    """Copy the session's features and production bars under the incident's baseline. False: nothing to copy."""
    layers = ["production", *(lake.feature_layer(t) for t in FEATURE_TABLES)]
    sources = [lake.partition_key(layer, market_id, session) for layer in layers]
    if not all(store.exists(k) for k in sources):
        return False
    for layer, key in zip(layers, sources):
        store.copy(key, _frame_key(baseline_prefix(incident_id), layer, market_id, session))
    return True


def _read(store: ObjectStore, key: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(store.get_bytes(key)))


def load_baseline(store: ObjectStore, incident_id: str, market_id: str, session: dt.date):
    """(features, production bars) of the baseline, or None when none was taken."""
    prefix = baseline_prefix(incident_id)
    try:
        tables = {t: _read(store, _frame_key(prefix, lake.feature_layer(t), market_id, session)) for t in FEATURE_TABLES}
        bars = _read(store, _frame_key(prefix, "production", market_id, session))
    except ObjectNotFound:
        return None
    from tradepulse_assets.indicators.features import SessionFeatures

    return SessionFeatures(**tables), bars


def revised_minutes(market: Market, session: dt.date, before: pl.DataFrame, after: pl.DataFrame) -> np.ndarray:
    """Minutes whose (forward-filled) close moved between two versions of a session: what the features see."""
    symbols = sorted(set(before.get_column("symbol").unique()) | set(after.get_column("symbol").unique()))
    close_before, minutes, _ = close_matrix(before, market, session, symbols)
    close_after, _, _ = close_matrix(after, market, session, symbols)
    from tradepulse_assets.indicators.features import effective_revisions

    return effective_revisions(close_before, close_after, minutes)


@dataclass(frozen=True)
class ToleranceOutcome:
    incident_id: str | None
    report: ToleranceReport | None
    revised: int

    @property
    def passed(self) -> bool:
        return self.report is None or self.report.passed

    @property
    def summary(self) -> str:
        if self.report is None:
            return "No pre-incident baseline for this partition; nothing to compare."
        r = self.report
        return (
            f"{r.n_outside} of {r.n_compared} value(s) outside tolerance vs baseline of {self.incident_id}; "
            f"{self.revised} revised minute(s) touched {r.n_touched} value(s)"
        )


def tolerance_gate(
    store: ObjectStore,
    market: Market,
    session: dt.date,
    current: SessionFeatures,
    incident_ids: list[str],
    tolerance: float,
) -> ToleranceOutcome:
    """Compare with the newest baseline among ``incident_ids`` (newest first); no baseline passes."""
    from tradepulse_assets.indicators.tolerance import compare_to_baseline

    for incident_id in incident_ids:
        loaded = load_baseline(store, incident_id, market.market_id, session)
        if loaded is None:
            continue
        baseline, baseline_bars = loaded
        bars = lake.read_frame(store, "production", market.market_id, session)
        revised = revised_minutes(market, session, baseline_bars, bars)
        report = compare_to_baseline(baseline, current, revised, tolerance, FEATURE_TOLERANCES)
        return ToleranceOutcome(incident_id, report, len(revised))
    return ToleranceOutcome(None, None, 0)
