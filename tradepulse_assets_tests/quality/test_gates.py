"""Each gate on small hand-built frames whose verdict is written here, not derived from the code."""

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from scipy.stats import median_abs_deviation

from tradepulse_assets.markets import calendar_for
from tradepulse_assets.quality import (
    GateConfig,
    GateInputError,
    check_completeness,
    check_duplicate_bars,
    check_freshness,
    check_manifest_reconciliation,
    check_monotonic_timestamps,
    check_negative_volume,
    check_ohlc_consistency,
    check_price_scale,
    check_price_spikes,
    check_schema,
    check_stale_prices,
)
from tradepulse_assets_tests.quality.synth import bars, clean_session, utc

XNYS = calendar_for("XNYS", "XNYS")
XHKG = calendar_for("XHKG", "XHKG")
THU = dt.date(2026, 3, 5)  # XNYS 14:30-21:00 UTC (before US DST)


def test_ohlc_consistency_names_each_violation():
    t = utc(2026, 3, 5, 14, 30)
    frame = bars(
        [
            ("A", t, 10.0, 11.0, 9.5, 10.5, 100.0),  # fine
            ("B", t, 10.0, 11.0, 10.2, 10.5, 100.0),  # low above the open
            ("C", t, 10.0, 10.3, 9.5, 10.5, 100.0),  # high below the close
            ("D", t, 10.0, 9.0, 11.0, 10.0, 100.0),  # low above high (and outside the body)
            ("E", t, 0.0, 11.0, 9.5, 10.5, 100.0),  # zero price
            ("F", t, 10.0, 11.0, 9.5, float("nan"), 100.0),  # NaN price
        ]
    )
    r = check_ohlc_consistency(frame)
    assert not r.passed and r.blocking
    assert r.counts["rows_violating"] == 5
    assert r.counts["low_above_body"] == 2  # B and D
    assert r.counts["high_below_body"] == 2  # C and D
    assert r.counts["low_above_high"] == 1
    assert r.counts["non_positive_or_non_finite"] == 2
    assert [e["symbol"] for e in r.evidence] == ["B", "C", "D", "E", "F"]
    assert r.evidence[2]["violations"] == ["low_above_body", "high_below_body", "low_above_high"]
    json.dumps(r.to_metadata())  # NaN close in evidence is still JSON-able


def test_ohlc_consistency_passes_on_doji_and_flat_bars():
    t = utc(2026, 3, 5, 14, 30)
    assert check_ohlc_consistency(bars([("A", t, 10.0, 10.0, 10.0, 10.0, 0.0)])).passed


def test_negative_volume_counts_negative_and_nan():
    t = utc(2026, 3, 5, 14, 30)
    frame = bars(
        [
            ("A", t, 1.0, 1.0, 1.0, 1.0, 5.0),
            ("B", t, 1.0, 1.0, 1.0, 1.0, -1.0),
            ("C", t, 1.0, 1.0, 1.0, 1.0, float("nan")),
        ]
    )
    r = check_negative_volume(frame)
    assert not r.passed and r.blocking
    assert (r.counts["negative"], r.counts["non_finite"], r.counts["rows_violating"]) == (1, 1, 2)
    assert [e["row"] for e in r.evidence] == [1, 2]


def test_duplicate_bars_on_and_off_the_session_grid():
    m = lambda h, mi: utc(2026, 3, 5, h, mi)
    frame = bars(
        [
            ("A", m(14, 30), 1, 1, 1, 1, 1),
            ("A", m(14, 31), 1, 1, 1, 1, 1),
            ("B", m(14, 30), 1, 1, 1, 1, 1),
            ("A", m(14, 31), 2, 2, 2, 2, 1),  # restated duplicate of row 1
            ("A", m(13, 0), 1, 1, 1, 1, 1),  # off the grid (before the open) ...
            ("A", m(13, 0), 1, 1, 1, 1, 1),  # ... and duplicated there too
        ]
    )
    r = check_duplicate_bars(frame, XNYS, THU)
    assert not r.passed
    assert r.counts["duplicate_rows"] == 2 and r.counts["duplicated_keys"] == 2
    assert [e["row"] for e in r.evidence] == [1, 3, 4, 5]
    assert check_duplicate_bars(frame[:3], XNYS, THU).passed


@pytest.mark.parametrize(
    ("rows", "bad_rows"),
    [
        # interleaved delivery (minute by minute): A goes back from 14:31 to 14:30
        ([("A", 31), ("B", 30), ("A", 30), ("B", 31), ("A", 32)], [2]),
        # grouped by symbol: the third A bar is earlier than the second
        ([("A", 30), ("A", 32), ("A", 31), ("B", 30), ("B", 31)], [2]),
        # a repeated timestamp is not strictly increasing
        ([("A", 30), ("B", 30), ("A", 30)], [2]),
        # each symbol increasing although the file as a whole is not sorted
        ([("B", 30), ("A", 30), ("B", 31), ("A", 31)], []),
    ],
)
def test_monotonic_timestamps_in_delivery_order(rows, bad_rows):
    frame = bars([(s, utc(2026, 3, 5, 14, mi), 1, 1, 1, 1, 1) for s, mi in rows])
    r = check_monotonic_timestamps(frame)
    assert r.passed is (not bad_rows)
    assert [e["row"] for e in r.evidence] == bad_rows
    assert r.counts["rows_out_of_order"] == len(bad_rows)


def _drop(frame: pl.DataFrame, symbols, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    hit = pl.col("symbol").is_in(list(symbols)) & (pl.col("ts") >= start) & (pl.col("ts") < end)
    return frame.filter(~hit)


def test_completeness_gap_windows_per_symbol_and_market_wide():
    frame = clean_session("XNYS", THU, symbols=["A", "B"])
    frame = _drop(frame, ["A"], utc(2026, 3, 5, 15, 0), utc(2026, 3, 5, 15, 10))  # A: 10 minutes
    frame = _drop(frame, ["A", "B"], utc(2026, 3, 5, 16, 0), utc(2026, 3, 5, 16, 5))  # everyone: 5 minutes
    frame = _drop(frame, ["B"], utc(2026, 3, 5, 20, 59), utc(2026, 3, 5, 21, 0))  # B: last minute
    r = check_completeness(frame, XNYS, THU)
    assert not r.passed and r.blocking
    assert r.counts["expected"] == 780 and r.counts["missing"] == 10 + 2 * 5 + 1
    assert r.counts["present"] == 759
    assert [(w.symbol, w.start, w.end, w.missing_minutes) for w in r.gap_windows] == [
        ("A", utc(2026, 3, 5, 15, 0), utc(2026, 3, 5, 15, 10), 10),
        ("*", utc(2026, 3, 5, 16, 0), utc(2026, 3, 5, 16, 5), 5),
        ("B", utc(2026, 3, 5, 20, 59), utc(2026, 3, 5, 21, 0), 1),
    ]


def test_completeness_sees_a_symbol_missing_altogether():
    frame = clean_session("XNYS", THU, symbols=["A", "B"])
    frame = _drop(frame, ["A", "B"], utc(2026, 3, 5, 16, 0), utc(2026, 3, 5, 16, 5))
    r = check_completeness(frame, XNYS, THU, expected_symbols=["A", "B", "C"])
    assert r.counts["expected"] == 3 * 390 and r.counts["missing"] == 390 + 2 * 5
    windows = [(w.symbol, w.start, w.end, w.missing_minutes) for w in r.gap_windows]
    assert windows == [
        ("C", utc(2026, 3, 5, 14, 30), utc(2026, 3, 5, 16, 0), 90),
        ("*", utc(2026, 3, 5, 16, 0), utc(2026, 3, 5, 16, 5), 5),
        ("C", utc(2026, 3, 5, 16, 5), utc(2026, 3, 5, 21, 0), 295),
    ]
    # the windows partition the missing bars: a market-wide minute counts once per symbol
    n_sym = r.counts["symbols"]
    assert (
        sum(w.missing_minutes * (n_sym if w.symbol == "*" else 1) for w in r.gap_windows)
        == r.counts["missing"]
    )


def test_completeness_window_straddles_the_lunch_break_in_trading_minutes():
    day = dt.date(2026, 3, 5)  # XHKG 01:30-04:00 and 05:00-08:00 UTC
    frame = clean_session("XHKG", day, symbols=["A", "B"])
    frame = _drop(frame, ["A"], utc(2026, 3, 5, 3, 55), utc(2026, 3, 5, 5, 5))
    r = check_completeness(frame, XHKG, day)
    assert [(w.symbol, w.start, w.end, w.missing_minutes) for w in r.gap_windows] == [
        ("A", utc(2026, 3, 5, 3, 55), utc(2026, 3, 5, 5, 5), 10)
    ]
    assert r.counts["missing"] == 10


def test_completeness_of_an_empty_partition_is_one_market_wide_gap():
    r = check_completeness(clean_session("XNYS", THU).clear(), XNYS, THU)
    assert not r.passed
    assert [(w.symbol, w.missing_minutes) for w in r.gap_windows] == [("*", 390)]
    r = check_completeness(clean_session("XNYS", THU).clear(), XNYS, THU, expected_symbols=["A", "B"])
    assert r.counts["missing"] == 780 and [(w.symbol, w.missing_minutes) for w in r.gap_windows] == [
        ("*", 390)
    ]


def test_completeness_tolerance_is_configurable():
    frame = _drop(
        clean_session("XNYS", THU, symbols=["A"]), ["A"], utc(2026, 3, 5, 15), utc(2026, 3, 5, 15, 1)
    )
    assert not check_completeness(frame, XNYS, THU).passed
    assert check_completeness(frame, XNYS, THU, config=GateConfig(completeness_min_coverage=0.99)).passed


def _scale_bar(frame: pl.DataFrame, symbol: str, ts: dt.datetime, factor: float) -> pl.DataFrame:
    hit = (pl.col("symbol") == symbol) & (pl.col("ts") == ts)
    return frame.with_columns(
        pl.when(hit).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    )


def test_x100_price_error_is_caught_by_spikes_and_blocking_scale_rule():
    frame = _scale_bar(clean_session("XNYS", THU, seed=3), "NY005", utc(2026, 3, 5, 17, 0), 100.0)
    spikes = check_price_spikes(frame, XNYS, THU)
    scale = check_price_scale(frame, XNYS, THU)
    assert not spikes.passed and not spikes.blocking  # advisory
    assert spikes.counts["spikes"] == 2  # into and out of the bad bar
    assert {e["symbol"] for e in spikes.evidence} == {"NY005"}
    assert not scale.passed and scale.blocking
    assert scale.counts["scale_breaks"] == 2
    assert scale.evidence[0]["ts"] == "2026-03-05T17:00:00+00:00"
    assert scale.evidence[0]["factor"] == pytest.approx(100.0, rel=0.02)


def test_a_20_percent_bad_print_is_a_spike_but_not_a_scale_error():
    frame = _scale_bar(clean_session("XNYS", THU, seed=3), "NY002", utc(2026, 3, 5, 15, 0), 1.2)
    assert check_price_spikes(frame, XNYS, THU).counts["spikes"] == 2
    assert check_price_scale(frame, XNYS, THU).passed


def test_robust_z_matches_scipy_median_abs_deviation():
    rng = np.random.default_rng(11)
    r = rng.normal(0, 1e-3, 389)
    r[200] = 0.3
    closes = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    minutes = XNYS.minutes(THU)
    frame = pl.DataFrame(
        {
            "symbol": ["A"] * 390,
            "ts": pl.Series(minutes).dt.replace_time_zone("UTC"),
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
        }
    )
    reference_z = abs(r[200] - np.median(r)) / median_abs_deviation(r, scale="normal")
    result = check_price_spikes(frame, XNYS, THU, GateConfig(spike_z_threshold=50))
    assert result.counts["spikes"] == 1
    assert result.evidence[0]["ts"] == "2026-03-05T17:51:00+00:00"  # minute 201 = 14:30 + 201 min
    assert result.evidence[0]["robust_z"] == pytest.approx(reference_z, rel=1e-4)


def test_stale_prices_flags_runs_of_the_configured_length():
    frame = clean_session("XNYS", THU, symbols=["A", "B"], seed=5)

    def freeze(f, sym, start, n, price):
        hit = (
            (pl.col("symbol") == sym)
            & (pl.col("ts") >= start)
            & (pl.col("ts") < start + dt.timedelta(minutes=n))
        )
        return f.with_columns(
            pl.when(hit).then(price).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")
        )

    frame = freeze(frame, "A", utc(2026, 3, 5, 15, 0), 12, 42.0)  # frozen 12 minutes: flagged
    frame = freeze(frame, "B", utc(2026, 3, 5, 15, 0), 9, 17.0)  # 9 minutes: below the default 10
    r = check_stale_prices(frame, XNYS, THU)
    assert not r.passed and r.blocking
    assert (r.counts["stale_runs"], r.counts["stale_bars"]) == (1, 12)
    assert r.evidence[0] == {
        "symbol": "A",
        "ts": "2026-03-05T15:00:00+00:00",
        "close": 42.0,
        "last_ts": "2026-03-05T15:11:00+00:00",
        "minutes": 12,
    }
    assert check_stale_prices(frame, XNYS, THU, GateConfig(stale_min_minutes=9)).counts["stale_runs"] == 2


def test_manifest_reconciliation():
    assert check_manifest_reconciliation(100, 100, True).passed
    short = check_manifest_reconciliation(98, 100, True)
    assert not short.passed and short.blocking and short.counts["difference"] == -2
    bad_sum = check_manifest_reconciliation(100, 100, False)
    assert not bad_sum.passed and "checksum" in bad_sum.summary
    files = check_manifest_reconciliation(
        100,
        100,
        None,
        vendor_file_counts={"a.csv": 60, "b.csv": 40},
        landed_file_counts={"a.csv": 60, "b.csv": 39},
    )
    assert not files.passed and files.evidence == [{"file": "b.csv", "vendor_rows": 40, "landed_rows": 39}]
    skipped = check_manifest_reconciliation(100)
    assert skipped.passed and not skipped.evaluated
    degraded = check_manifest_reconciliation(100, 100, True, vendor_condition="degraded")
    assert not degraded.passed and degraded.blocking and degraded.evidence == [{"condition": "degraded"}]
    assert "'degraded'" in degraded.summary and degraded.counts["degraded"] == 1
    assert check_manifest_reconciliation(100, vendor_condition="available").passed


def test_freshness_warns_by_default_and_never_fails_a_backfill():
    deadline = utc(2026, 3, 5, 21, 5)
    assert check_freshness(utc(2026, 3, 5, 21, 1), deadline).passed
    late = check_freshness(utc(2026, 3, 5, 21, 7), deadline)
    assert not late.passed and not late.blocking and late.counts["seconds_late"] == 120
    assert check_freshness(
        utc(2026, 3, 5, 21, 7), deadline, config=GateConfig(blocking={"freshness": True})
    ).blocking
    backfill = check_freshness(utc(2026, 3, 9, 10), deadline, is_backfill=True)
    assert backfill.passed and not backfill.blocking
    with pytest.raises(GateInputError, match="landed_at"):
        check_freshness(dt.datetime(2026, 3, 5, 21), deadline)


def test_schema_reports_failure_cases():
    frame = clean_session("XNYS", THU, symbols=["A"]).drop("volume")
    r = check_schema(frame)
    assert not r.passed and r.blocking
    assert "volume" in r.summary and "column_in_dataframe" in r.summary
    assert check_schema(clean_session("XNYS", THU, symbols=["A"])).passed
    renamed = check_schema(clean_session("XNYS", THU, symbols=["A"]).rename({"close": "px_close"}))
    assert not renamed.passed


def test_gate_config_rejects_nonsense():
    with pytest.raises(ValueError, match="stale_min_minutes"):
        GateConfig(stale_min_minutes=1)
    with pytest.raises(ValueError, match="coverage"):
        GateConfig(completeness_min_coverage=1.5)
    assert math.isclose(GateConfig().price_scale_log_threshold, math.log(10))
