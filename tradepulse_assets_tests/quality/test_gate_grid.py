"""What the faster grid work must keep: NumPy's medians bit for bit, runs as a cell-by-cell scan finds them, a
return after a gap measured against the bar before it, and the same results whether the suite runs its grid
gates beside the row gates or after them."""

import dataclasses
import datetime as dt
import json
import warnings

import numpy as np
import polars as pl
import pytest

import tradepulse_assets.quality.suite as suite
from tradepulse_assets.markets import calendar_for
from tradepulse_assets.quality import GateConfig, check_price_scale, check_price_spikes, check_stale_prices
from tradepulse_assets.quality.session_grid import nan_median_rows, runs_of_true
from tradepulse_assets_tests.quality.synth import bars, clean_session, utc

CRYPTO = calendar_for("CRYPTO", "24/7")
DAY = dt.date(2026, 3, 2)


def test_row_medians_are_numpys_nanmedian_bit_for_bit():
    rng = np.random.default_rng(5)
    for _ in range(100):
        values = rng.standard_normal((int(rng.integers(1, 12)), int(rng.integers(1, 300))))
        values = np.round(values, int(rng.integers(0, 3)))  # ties
        values[rng.random(values.shape) < rng.random()] = np.nan  # rows with every count, some all-NaN
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(values, axis=1)
        assert np.array_equal(nan_median_rows(values), expected, equal_nan=True)


def test_runs_of_true_are_the_runs_a_scan_finds():
    rng = np.random.default_rng(6)
    for density in (0.02, 0.5, 0.98):
        mask = rng.random((7, 40)) < density
        mask[3] = False
        mask[4] = True  # a run from the first column to the last
        scanned = []
        for row in range(mask.shape[0]):
            col = 0
            while col < mask.shape[1]:
                if mask[row, col]:
                    start = col
                    while col + 1 < mask.shape[1] and mask[row, col + 1]:
                        col += 1
                    scanned.append((row, start, col))
                col += 1
        assert list(zip(*(a.tolist() for a in runs_of_true(mask)))) == scanned


def _minute(i: int) -> dt.datetime:
    return utc(2026, 3, 2) + dt.timedelta(minutes=i)


def test_a_return_after_missing_minutes_or_a_bad_close_looks_back_to_the_last_good_bar():
    closes = {0: 10.0, 1: 10.0, 2: 10.0, 6: 0.0, 7: 1000.0, 8: 1000.0}  # 3-5 missing, 6 not positive
    frame = bars([("A", _minute(i), c, c, c, c, 1.0) for i, c in closes.items()])
    result = check_price_scale(frame, CRYPTO, DAY)
    assert result.counts["returns"] == 4  # minutes 1, 2, 7 (against 2) and 8: the first bar has none
    assert result.counts["scale_breaks"] == 1
    assert result.evidence[0]["ts"] == _minute(7).isoformat()
    assert result.evidence[0]["previous_ts"] == _minute(2).isoformat()
    assert result.evidence[0]["previous_close"] == 10.0
    assert result.evidence[0]["factor"] == pytest.approx(100.0)


def test_a_spike_names_the_bar_it_was_measured_against():
    closes = 100.0 * np.exp(np.cumsum(np.random.default_rng(8).normal(0, 1e-3, 300)))
    closes[150] *= 1.5
    frame = bars([("A", _minute(i), c, c, c, c, 1.0) for i, c in enumerate(closes) if i not in (148, 149)])
    result = check_price_spikes(frame, CRYPTO, DAY, GateConfig(spike_z_threshold=50))
    measured = {(e["ts"], e["previous_ts"]) for e in result.evidence}
    assert measured == {(_minute(150).isoformat(), _minute(147).isoformat()),
                        (_minute(151).isoformat(), _minute(150).isoformat())}


def test_a_frozen_run_is_judged_on_the_last_delivered_bar_of_each_minute():
    frozen = [("A", _minute(i), 5.0, 5.0, 5.0, 5.0, 1.0) for i in range(12)]
    redelivered = ("A", _minute(6), 5.0, 5.1, 4.9, 5.0, 1.0)  # minute 6 again, not frozen: splits the run
    config = GateConfig(stale_min_minutes=6)
    assert check_stale_prices(bars(frozen), CRYPTO, DAY, config).counts["stale_runs"] == 1
    split = check_stale_prices(bars([*frozen, redelivered]), CRYPTO, DAY, config)
    assert (split.counts["stale_runs"], split.counts["stale_bars"]) == (1, 6)  # 0-5 stays; 7-11 is 5 bars


def _hostile_day(n_symbols: int, seed: int) -> pl.DataFrame:
    """A day of CRYPTO bars with every kind of fault, delivered minute by minute, with a few rows swapped."""
    frame = clean_session("CRYPTO", DAY, seed=seed, symbols=[f"S{i:03d}" for i in range(n_symbols)])
    rng = np.random.default_rng(seed)
    n = frame.height
    close, volume = frame["close"].to_numpy().copy(), frame["volume"].to_numpy().copy()
    ts = frame["ts"].to_physical().to_numpy().copy()
    close[rng.choice(n, 20, replace=False)] *= 100.0
    close[rng.choice(n, 5, replace=False)] = np.nan
    volume[rng.choice(n, 5, replace=False)] = -1.0
    ts[rng.choice(n, 5, replace=False)] += 30_000_000  # off the minute
    frame = frame.with_columns(
        pl.Series("close", close), pl.Series("volume", volume), pl.Series("ts", ts).cast(frame["ts"].dtype)
    )
    frame = pl.concat([frame, frame[rng.choice(n, 10, replace=False).tolist()]])  # repeated bars
    order = np.arange(frame.height)
    swap = rng.choice(frame.height - 1, 20, replace=False)
    order[swap], order[swap + 1] = order[swap + 1], order[swap].copy()
    return frame[order.tolist()].filter(pl.Series(rng.random(frame.height) > 0.001))  # and some missing


def test_the_suite_gives_the_same_results_on_one_thread_and_on_two(monkeypatch):
    frame = _hostile_day(150, seed=21)  # about 216,000 bars: above the two-lane threshold
    assert frame.height >= suite.TWO_LANES_MIN_ROWS
    two = suite.run_gate_suite(frame, CRYPTO, DAY, expected_symbols=[f"S{i:03d}" for i in range(151)])
    monkeypatch.setattr(suite, "TWO_LANES_MIN_ROWS", frame.height + 1)
    one = suite.run_gate_suite(frame, CRYPTO, DAY, expected_symbols=[f"S{i:03d}" for i in range(151)])
    assert [r.gate for r in two] == [r.gate for r in one]
    as_text = lambda results: [json.dumps(dataclasses.asdict(r), default=str) for r in results]  # NaN == NaN
    assert as_text(two) == as_text(one)
    failed = {r.gate for r in two if not r.passed}
    assert {"duplicate_bars", "monotonic_timestamps", "completeness", "price_scale", "negative_volume"} <= failed


def _out_of_order_by_scan(frame: pl.DataFrame) -> list[tuple[int, int]]:
    """(row, previous row of its symbol) for every bar whose ts is not above that previous bar's: a plain scan."""
    last: dict[str, tuple[int, dt.datetime]] = {}
    found = []
    for row, (symbol, ts) in enumerate(frame.select("symbol", "ts").iter_rows()):
        if symbol in last and ts <= last[symbol][1]:
            found.append((row, last[symbol][0]))
        last[symbol] = (row, ts)
    return found


def test_out_of_order_bars_are_the_ones_a_scan_finds():
    rng = np.random.default_rng(9)
    symbols = [f"S{i:02d}" for i in range(40)]
    clean = clean_session("CRYPTO", DAY, seed=9, symbols=symbols).head(40 * 120)  # 2 hours, minute by minute
    for trial in range(6):
        frame = clean.with_row_index("i")
        i = rng.choice(frame.height - 1, 3, replace=False)
        order = np.arange(frame.height)
        order[i], order[i + 40] = order[i + 40], order[i].copy()  # a bar swapped with its next minute
        resent = int(rng.integers(0, frame.height))
        order = np.insert(order, resent + 1, order[resent])  # sent twice in a row: equal to the latest time
        twin = int(rng.integers(0, frame.height - 200))
        late = int(rng.integers(0, frame.height - 200))
        parts = [frame[order.tolist()], frame[[twin]], frame[[late]]]  # a repeat, a bar delivered again later
        if trial % 2:
            parts.append(frame[[late + 40]].with_columns(pl.col("ts") + dt.timedelta(seconds=20)))  # off grid
        frame = pl.concat(parts).drop("i")
        result = suite.run_gate_suite(frame, CRYPTO, DAY)
        monotonic = next(r for r in result if r.gate == "monotonic_timestamps")
        expected = _out_of_order_by_scan(frame)
        assert monotonic.counts["rows_out_of_order"] == len(expected)
        assert [(e["row"], e["previous_row"]) for e in monotonic.evidence] == expected[:20]


def test_a_repeated_key_after_an_earlier_step_back_is_judged_against_the_step_back():
    t = [_minute(m) for m in range(4)]
    rows = [("A", t[2], 1.0, 1.0, 1.0, 1.0, 1.0), ("A", t[1], 1.0, 1.0, 1.0, 1.0, 1.0),
            ("A", t[2], 1.0, 1.0, 1.0, 1.0, 1.0), ("A", t[3], 1.0, 1.0, 1.0, 1.0, 1.0)]
    rows += [(f"B{i}", m, 1.0, 1.0, 1.0, 1.0, 1.0) for i in range(5) for m in t]  # symbols that are in order
    result = suite.run_gate_suite(bars(rows), CRYPTO, DAY)
    monotonic = next(r for r in result if r.gate == "monotonic_timestamps")
    assert [(e["row"], e["previous_row"]) for e in monotonic.evidence] == [(1, 0)]  # 2 follows 1: in order
