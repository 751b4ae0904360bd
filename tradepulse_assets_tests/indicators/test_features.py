"""Session features and the backfill tolerance gate, as the Dagster assets will call them."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tradepulse_assets.indicators import (
    FeatureParams,
    compare_to_baseline,
    compute_session_features,
    effective_revisions,
    forward_fill,
)

N_MIN, N_SYM = 390, 24
SYMBOLS = [f"SYM{i:02d}" for i in range(N_SYM)]


@pytest.fixture(scope="module")
def session() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2026)
    factor = rng.standard_normal((N_MIN, 2)) @ rng.standard_normal((2, N_SYM))
    close = 50.0 * np.exp(np.cumsum((0.8 * factor + rng.standard_normal((N_MIN, N_SYM))) * 5e-4, axis=0))
    close[:10, 3] = np.nan  # SYM03 starts trading late
    close[100:104, 5] = np.nan  # SYM05 misses four bars
    ts = (np.datetime64("2026-03-02T14:30") + np.arange(N_MIN).astype("timedelta64[m]")).astype("datetime64[us]")
    return close, ts


@pytest.fixture(scope="module")
def baseline(session):
    close, ts = session
    return compute_session_features(close, ts, SYMBOLS)


def test_frames_have_the_documented_columns_and_windows(baseline, session):
    _, ts = session
    k = baseline.kuramoto
    assert k.columns == ["window_start", "window_end", "r", "n_symbols"]
    assert k.height == 6  # 390 bars, 64-bar windows, step 64
    assert k["window_start"].dtype == pl.Datetime("us", "UTC")
    assert k["window_start"][0].replace(tzinfo=None) == ts[0].astype("datetime64[us]").item()
    assert ((k["window_end"] - k["window_start"]).dt.total_minutes() == 63).all()
    assert k["r"].is_between(0, 1).all()
    assert k["n_symbols"].to_list()[:2] == [23, 24]  # SYM03's leading gap keeps it out of the first window
    r = baseline.ricci
    assert {"window_end", "ollivier_mean", "forman_mean", "n_edges"} <= set(r.columns)
    assert r.height == 5 and (r["n_edges"] >= N_SYM - 2).all()  # at least a spanning tree
    e = baseline.ricci_edges
    assert e.columns == ["window_end", "source", "target", "ollivier", "forman"]
    assert e.height == int(r["n_edges"].sum())
    assert set(e["source"]) | set(e["target"]) <= set(SYMBOLS)
    h = baseline.hurst
    assert h["symbol"].to_list() == SYMBOLS
    assert h["dfa"].is_between(0.2, 0.8).all() and h["rs"].is_between(0.2, 0.8).all()
    assert h.filter(pl.col("symbol") == "SYM03")["n_returns"].item() == N_MIN - 11
    assert baseline.params.to_dict()["kuramoto_window"] == 64


def test_forward_fill_keeps_leading_gaps():
    x = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [4.0, 5.0]])
    np.testing.assert_array_equal(forward_fill(x), [[np.nan, 1.0], [2.0, 1.0], [2.0, 1.0], [4.0, 5.0]])


def test_unchanged_session_passes_with_nothing_touched(baseline, session):
    close, ts = session
    again = compute_session_features(close, ts, SYMBOLS)
    report = compare_to_baseline(baseline, again, np.array([], dtype="datetime64[us]"))
    assert report.passed and report.n_touched == 0 and report.n_outside == 0
    json.dumps(report.to_metadata())


def test_small_revision_moves_only_touched_windows_and_passes(baseline, session):
    close, ts = session
    revised = close.copy()
    revised[200, 7] *= 1.00001
    current = compute_session_features(revised, ts, SYMBOLS)
    report = compare_to_baseline(baseline, current, effective_revisions(close, revised, ts))
    assert report.passed, report.to_metadata()
    assert report.n_untouched_changed == 0
    touched_windows = {e.window_end for e in report.changed if e.feature == "kuramoto.r"}
    assert len(touched_windows) == 1  # non-overlapping Kuramoto windows: exactly one contains bar 200
    assert {e.feature for e in report.changed} >= {"kuramoto.r", "ricci.ollivier_mean", "hurst.dfa", "hurst.rs"}
    assert max(e.abs_diff for e in report.changed) > 0  # the revision is visible


def test_large_revision_fails_and_names_the_touched_values(baseline, session):
    close, ts = session
    revised = close.copy()
    revised[200:230, :12] *= np.linspace(1.0, 1.05, 30)[:, None]
    current = compute_session_features(revised, ts, SYMBOLS)
    report = compare_to_baseline(baseline, current, effective_revisions(close, revised, ts))
    assert not report.passed
    assert report.n_outside > 0 and report.n_untouched_changed == 0
    assert all(e.touched_by_revision and e.abs_diff > 0.005 for e in report.outside)
    meta = report.to_metadata(max_rows=5)
    assert len(meta["outside"]) == 5 and meta["outside_truncated"]
    json.dumps(meta)


def test_change_outside_the_revised_windows_is_caught(baseline, session):
    close, ts = session
    revised = close.copy()
    revised[20, 2] *= 1.00001  # changed but not declared as revised
    current = compute_session_features(revised, ts, SYMBOLS)
    report = compare_to_baseline(baseline, current, ts[[300]])
    assert not report.passed
    assert report.n_untouched_changed > 0
    assert any(e.feature == "kuramoto.r" and not e.touched_by_revision for e in report.outside)


def test_effective_revisions_follow_forward_fill(session):
    close, ts = session
    revised = close.copy()
    revised[101, 5] = 51.0  # fills a missing bar: minutes 102 and 103 inherit it
    np.testing.assert_array_equal(effective_revisions(close, revised, ts), ts[101:104])


def test_different_parameters_are_not_comparable(baseline, session):
    close, ts = session
    other = compute_session_features(close, ts, SYMBOLS, FeatureParams(kuramoto_step=32))
    with pytest.raises(ValueError, match="different parameters"):
        compare_to_baseline(baseline, other, ts[:0])


@pytest.mark.parametrize(
    "args, message",
    [
        (lambda c, t: (c[:, :3], t, SYMBOLS), "3 columns"),
        (lambda c, t: (c, t[::-1], SYMBOLS), "strictly increasing"),
        (lambda c, t: (c, t[:-1], SYMBOLS), "timestamps"),
        (lambda c, t: (c, t, SYMBOLS[:-1] + ["SYM00"]), "duplicate"),
        (lambda c, t: (np.where(np.arange(N_SYM) == 1, -c, c), t, SYMBOLS), "non-positive price"),
        (lambda c, t: (c, np.arange(N_MIN), SYMBOLS), "datetime64"),
    ],
)
def test_feature_inputs_are_validated(session, args, message):
    close, ts = session
    with pytest.raises(ValueError, match=message):
        compute_session_features(*args(close, ts))


def test_params_are_validated():
    with pytest.raises(ValueError, match="alpha"):
        FeatureParams(ricci_alpha=2.0)
    with pytest.raises(ValueError, match="too short"):
        FeatureParams(kuramoto_window=2)


def test_work_split_per_window_runs_windows_side_by_side_and_changes_nothing(baseline, session, monkeypatch):
    """With the split forced (any work repays it, 2 threads), every Ricci window runs on a worker thread
    with serial kernels, and the frames equal the in-order computation bit for bit."""
    import threading

    import numba

    from tradepulse_assets.indicators import _jit, features

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba is configured with a single thread")
    monkeypatch.setattr(_jit, "PARALLEL_MIN_WORK", 0.0)
    ran_on = []
    window = features._ricci_window

    def recording(*args):
        ran_on.append((threading.current_thread().name, _jit.use_threads(1e12)))
        return window(*args)

    monkeypatch.setattr(features, "_ricci_window", recording)
    previous = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        split = compute_session_features(*session, SYMBOLS)
    finally:
        numba.set_num_threads(previous)
    assert len(ran_on) == baseline.ricci.height
    assert all(name.startswith("indicators") and not threaded for name, threaded in ran_on)
    for name in ("kuramoto", "ricci", "ricci_edges", "hurst"):
        assert getattr(split, name).equals(getattr(baseline, name)), name
