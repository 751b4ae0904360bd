"""The calendar gates at DST switches, early closes, lunch breaks and half days (runbook 3.3).

Run with the calendar suite: ``pytest tradepulse_assets_tests/data_quality -k market_calendar``. Expected
minutes and boundaries are the exchanges' published hours converted to UTC by hand, as in
``test_market_calendar.py``.
"""

import datetime as dt

import polars as pl
import pytest

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.quality import check_calendar_alignment, check_completeness, run_gate_suite
from tradepulse_assets_tests.quality.synth import bars, clean_session, utc

XNYS = calendar_for("XNYS", "XNYS")
XHKG = calendar_for("XHKG", "XHKG")


def one_bar(ts: dt.datetime) -> pl.DataFrame:
    return bars([("NY000", ts, 10.0, 10.0, 10.0, 10.0, 1.0)])


@pytest.mark.parametrize(
    ("cal", "session", "ts", "aligned"),
    [
        (XNYS, dt.date(2026, 3, 9), utc(2026, 3, 9, 13, 30), True),  # after US DST: opens 13:30 UTC
        (XNYS, dt.date(2026, 3, 5), utc(2026, 3, 5, 14, 30), True),  # before US DST: opens 14:30 UTC
        (XNYS, dt.date(2026, 3, 5), utc(2026, 3, 5, 13, 30), False),  # the summer open, a week too early
        (XNYS, dt.date(2026, 3, 9), utc(2026, 3, 9, 19, 59), True),  # last bar of the session
        (XNYS, dt.date(2026, 3, 9), utc(2026, 3, 9, 20, 0), False),  # the close is not a bar
        (
            XNYS,
            dt.date(2026, 11, 27),
            utc(2026, 11, 27, 17, 59),
            True,
        ),  # day after Thanksgiving, closes 18:00
        (XNYS, dt.date(2026, 11, 27), utc(2026, 11, 27, 18, 30), False),  # after the early close
        (XHKG, dt.date(2026, 3, 5), utc(2026, 3, 5, 4, 30), False),  # HKEX lunch break 04:00-05:00 UTC
        (XHKG, dt.date(2026, 3, 5), utc(2026, 3, 5, 5, 0), True),  # afternoon session opens
        (XHKG, dt.date(2026, 12, 24), utc(2026, 12, 24, 5, 0), False),  # half day: no afternoon
        (XNYS, dt.date(2026, 3, 9), utc(2026, 3, 9, 14, 0, 30), False),  # not on a minute boundary
    ],
)
def test_market_calendar_alignment_of_single_bars(cal, session, ts, aligned):
    result = check_calendar_alignment(one_bar(ts), cal, session)
    assert result.passed is aligned
    assert result.blocking


def test_market_calendar_alignment_evidence_names_the_nearest_boundary():
    r = check_calendar_alignment(one_bar(utc(2026, 3, 5, 13, 30)), XNYS, dt.date(2026, 3, 5))
    (e,) = r.evidence
    assert e["reason"] == "before the open"
    assert e["nearest_boundary"] == "2026-03-05 open" and e["boundary_ts"] == "2026-03-05T14:30:00+00:00"
    assert e["minutes_from_boundary"] == -60
    r = check_calendar_alignment(one_bar(utc(2026, 3, 5, 4, 30)), XHKG, dt.date(2026, 3, 5))
    assert r.evidence[0]["reason"] == "in the trading break"
    assert r.evidence[0]["nearest_boundary"] in ("2026-03-05 break start", "2026-03-05 break end")
    r = check_calendar_alignment(one_bar(utc(2026, 11, 27, 18, 30)), XNYS, dt.date(2026, 11, 27))
    assert r.evidence[0]["reason"] == "at or after the close"
    assert r.evidence[0]["boundary_ts"] == "2026-11-27T18:00:00+00:00"


def test_market_calendar_winter_offsets_after_the_dst_switch_are_caught_with_a_hint():
    """A vendor still stamping with the winter offset on 2026-03-09 delivers every bar an hour late."""
    day = dt.date(2026, 3, 9)
    shifted = clean_session("XNYS", day, symbols=["NY000", "NY001"]).with_columns(
        pl.col("ts") + dt.timedelta(hours=1)
    )
    r = check_calendar_alignment(shifted, XNYS, day)
    assert not r.passed
    assert r.counts["rows_misaligned"] == 2 * 60  # the bars stamped 20:00-20:59 fall after the close
    assert "+60 min from the open" in r.summary
    assert check_completeness(shifted, XNYS, day).counts["missing"] == 2 * 60  # and 13:30-14:29 is missing


def test_market_calendar_early_close_expects_210_minutes():
    day = dt.date(2026, 11, 27)
    r = check_completeness(clean_session("XNYS", day, symbols=["NY000"]), XNYS, day)
    assert r.passed and r.counts["expected_minutes"] == 210


def test_market_calendar_hkex_half_day_expects_the_morning_only():
    day = dt.date(2026, 12, 24)
    r = check_completeness(clean_session("XHKG", day, symbols=["HK000"]), XHKG, day)
    assert r.passed and r.counts["expected_minutes"] == 150  # 09:30-12:00 Hong Kong = 01:30-04:00 UTC


# (market, session) per default market: a DST day, an early close, the XHKG half day.
CLEAN_SESSIONS = [
    ("XNYS", dt.date(2026, 3, 9)),  # first session after US DST
    ("XNYS", dt.date(2026, 11, 27)),  # early close
    ("XLON", dt.date(2026, 3, 30)),  # first session after UK DST (during the US/UK mismatch)
    ("XLON", dt.date(2026, 12, 24)),  # early close
    ("XHKG", dt.date(2026, 3, 9)),  # full day with lunch break
    ("XHKG", dt.date(2026, 12, 24)),  # half day
    ("CRYPTO", dt.date(2026, 3, 29)),  # the UK switches clocks; a 24/7 UTC day does not
    ("CRYPTO", dt.date(2026, 11, 1)),  # the US switches clocks
]


@pytest.mark.parametrize(("market_id", "session"), CLEAN_SESSIONS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_market_calendar_clean_session_passes_every_gate(market_id, session, seed):
    market = load_registry().get(market_id)
    cal = calendar_for(market.market_id, market.calendar)
    frame = clean_session(market_id, session, seed=seed)
    close = cal.hours(session).close
    results = run_gate_suite(
        frame,
        cal,
        session,
        vendor_total=frame.height,
        checksums_ok=True,
        expected_symbols=market.symbols,
        landed_at=close + dt.timedelta(seconds=30),
        deadline=close + dt.timedelta(seconds=market.lag_sla_seconds),
    )
    failures = [(r.gate, r.summary) for r in results if not r.passed or not r.evaluated]
    assert failures == []
