"""Lag is counted over trading minutes only: nights, weekends, lunch breaks and early closes are not lag."""

import datetime as dt

import numpy as np

from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline.lag import measure_lag, minute_windows
from tradepulse_assets.markets import calendar_for

UTC = dt.timezone.utc
REGISTRY = load_registry()


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_streaming_lag_does_not_grow_over_the_xhkg_lunch_break():
    xhkg = REGISTRY.get("XHKG")
    promoted = {dt.date(2026, 3, d) for d in range(1, 9)}
    # Last bar landed 03:59 (the last morning minute); at 04:59 nothing is due: lunch.
    reading = measure_lag(xhkg, utc(2026, 3, 9, 4, 59), promoted, stream_watermark=utc(2026, 3, 9, 3, 59))
    assert reading.lag_seconds == 0 and not reading.breached
    # At 05:02:30 the bars 05:00 and 05:01 are complete but missing; 05:00 has been due since 05:01:00,
    # 90 s of trading time ago (the lunch hour before does not count).
    reading = measure_lag(xhkg, utc(2026, 3, 9, 5, 2, 30), promoted, stream_watermark=utc(2026, 3, 9, 3, 59))
    assert reading.lag_seconds == 90 and reading.breached  # SLA is 60 s
    assert [(w.start, w.end, w.missing_minutes) for w in reading.gap_windows] == [
        (utc(2026, 3, 9, 5, 0), utc(2026, 3, 9, 5, 2), 2)
    ]


def test_streaming_lag_is_the_age_of_the_oldest_complete_bar_not_landed():
    crypto = REGISTRY.get("CRYPTO")
    promoted = {dt.date(2026, 3, d) for d in range(1, 9)}
    landed_10_00 = utc(2026, 3, 9, 10, 0)
    assert measure_lag(crypto, utc(2026, 3, 9, 10, 1, 30), promoted, stream_watermark=landed_10_00).lag_seconds == 0
    # Bar 10:01 completed at 10:02:00 and is not here 5 s later: 5 s of lag, well within the SLA.
    assert measure_lag(crypto, utc(2026, 3, 9, 10, 2, 5), promoted, stream_watermark=landed_10_00).lag_seconds == 5
    # Three minutes later bars 10:01..10:03 are missing: 10:01 has been due for 2 min 30 s.
    late = measure_lag(crypto, utc(2026, 3, 9, 10, 4, 30), promoted, stream_watermark=landed_10_00)
    assert late.lag_seconds == 150 and late.breached


def test_batch_lag_counts_from_the_close_of_the_oldest_missing_session():
    xnys = REGISTRY.get("XNYS")
    # Monday 2026-03-09 closes 20:00 UTC (US summer time). Earlier sessions are in production.
    promoted = {dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4), dt.date(2026, 3, 5), dt.date(2026, 3, 6)}
    at_close = measure_lag(xnys, utc(2026, 3, 9, 20, 4), promoted)
    assert at_close.lag_seconds == 240 and not at_close.breached  # within the 5-minute SLA
    late = measure_lag(xnys, utc(2026, 3, 9, 20, 6), promoted)
    assert late.breached and late.missing_sessions == (dt.date(2026, 3, 9),)
    assert late.gap_windows[0].missing_minutes == 390


def test_batch_market_over_a_weekend_and_a_holiday_is_not_late():
    xnys = REGISTRY.get("XNYS")
    # Thanksgiving Thursday 2026-11-26 and the weekend after the early close of Friday 11-27.
    promoted = {dt.date(2026, 11, d) for d in (20, 23, 24, 25, 27)}
    reading = measure_lag(xnys, utc(2026, 11, 29, 12, 0), promoted)
    assert reading.lag_seconds == 0 and reading.missing_sessions == ()


def test_minute_windows_split_at_breaks():
    cal = calendar_for("XHKG", "XHKG")
    minutes = cal.trading_minutes_between(utc(2026, 3, 9, 3, 50), utc(2026, 3, 9, 5, 10))
    windows = minute_windows("XHKG", minutes, cal)
    assert [(w.start, w.end, w.missing_minutes) for w in windows] == [
        (utc(2026, 3, 9, 3, 50), utc(2026, 3, 9, 4, 0), 10),
        (utc(2026, 3, 9, 5, 0), utc(2026, 3, 9, 5, 10), 10),
    ]
    assert minute_windows("XHKG", np.array([], dtype="datetime64[us]"), cal) == []
