"""The indicator tolerance gate after a backfill: baseline snapshot, revised bars, recomputed features."""

import datetime as dt

import polars as pl
import pytest

from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import features
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.feeds.simulator import simulate_session

XNYS = load_registry().get("XNYS")
SESSION = dt.date(2026, 3, 9)
UTC = dt.timezone.utc


@pytest.fixture
def store(tmp_path):
    store = LocalObjectStore(tmp_path)
    bars = simulate_session(XNYS, SESSION, seed=4).select("symbol", "ts", "open", "high", "low", "close", "volume")
    lake.write_frame(store, "production", "XNYS", SESSION, bars)
    features.compute(store, XNYS, SESSION)
    assert features.snapshot_baseline(store, "INC-1", "XNYS", SESSION)
    return store


def revise(store, minute: dt.datetime, factor: float) -> None:
    bars = lake.read_frame(store, "production", "XNYS", SESSION)
    hit = (pl.col("symbol") == "NY003") & (pl.col("ts") == minute)
    revised = bars.with_columns(
        [pl.when(hit).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")]
    )
    lake.write_frame(store, "production", "XNYS", SESSION, revised)


def gate(store):
    current = features.compute(store, XNYS, SESSION)
    return features.tolerance_gate(store, XNYS, SESSION, current, ["INC-1"], tolerance=0.005)


def test_unchanged_backfill_matches_the_baseline_exactly(store):
    outcome = gate(store)
    assert outcome.passed and outcome.revised == 0
    assert outcome.report.n_touched == 0 and outcome.report.n_untouched_changed == 0


def test_a_small_revision_moves_only_the_windows_that_contain_it(store):
    revised_at = dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # minute 90 of the session (opens 13:30)
    revise(store, revised_at, 1.0002)
    outcome = gate(store)
    assert outcome.revised == 1
    report = outcome.report
    assert report.n_untouched_changed == 0  # every window without the revised bar is identical (1e-12)
    kuramoto_changed = {e.window_end for e in report.changed if e.feature.startswith("kuramoto")}
    # Kuramoto windows are 64 bars from the open: minute 90 lies in the window of bars 64..127.
    assert kuramoto_changed <= {dt.datetime(2026, 3, 9, 15, 37, tzinfo=UTC)}
    assert outcome.passed, report.to_metadata()


def test_a_large_revision_fails_the_gate_and_lists_the_windows(store):
    revise(store, dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC), 1.5)
    outcome = gate(store)
    assert not outcome.passed
    assert outcome.report.n_outside > 0
    assert all(e.touched_by_revision or e.feature.startswith("hurst") for e in outcome.report.outside)
    assert "outside tolerance" in outcome.summary


def test_no_baseline_means_nothing_to_compare(store):
    current = features.compute(store, XNYS, SESSION)
    outcome = features.tolerance_gate(store, XNYS, SESSION, current, ["INC-OTHER"], tolerance=0.005)
    assert outcome.passed and outcome.report is None
