"""The runbook's calendar suite (3.3): ``pytest tradepulse_assets_tests/data_quality -k market_calendar``.

Expected values are the exchanges' published hours (NYSE 09:30-16:00 New York, 13:00 early closes;
LSE 08:00-16:30 London, 12:30 half days; HKEX 09:30-12:00 and 13:00-16:00 Hong Kong), converted
to UTC by hand here, never derived from the code under test.
"""

import datetime as dt
import warnings

import numpy as np
import pytest

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.markets.calendars import (
    CalendarError,
    CalendarHorizonWarning,
    MarketCalendar,
    Override,
    load_overrides,
)

UTC = dt.timezone.utc


def utc(y, mo, d, h=0, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=UTC)


@pytest.fixture(scope="module")
def cal():
    return {m.market_id: calendar_for(m.market_id, m.calendar) for m in load_registry()}


# (market, session, open UTC, close UTC, minutes) from the exchanges' published hours.
PUBLISHED_HOURS = [
    # US DST starts 2026-03-08: NYSE 09:30 EST = 14:30 UTC before, 09:30 EDT = 13:30 UTC after.
    ("XNYS", dt.date(2026, 3, 6), (14, 30), (21, 0), 390),
    ("XNYS", dt.date(2026, 3, 9), (13, 30), (20, 0), 390),
    # US DST ends 2026-11-01.
    ("XNYS", dt.date(2026, 10, 30), (13, 30), (20, 0), 390),
    ("XNYS", dt.date(2026, 11, 2), (14, 30), (21, 0), 390),
    # Early closes 13:00 New York: day after Thanksgiving and Christmas Eve, 210 minutes.
    ("XNYS", dt.date(2026, 11, 27), (14, 30), (18, 0), 210),
    ("XNYS", dt.date(2026, 12, 24), (14, 30), (18, 0), 210),
    # UK BST starts 2026-03-29, ends 2026-10-25: LSE 08:00 London.
    ("XLON", dt.date(2026, 3, 27), (8, 0), (16, 30), 510),
    ("XLON", dt.date(2026, 3, 31), (7, 0), (15, 30), 510),
    ("XLON", dt.date(2026, 10, 23), (7, 0), (15, 30), 510),
    ("XLON", dt.date(2026, 10, 26), (8, 0), (16, 30), 510),
    # LSE half days 12:30 London (GMT): 270 minutes.
    ("XLON", dt.date(2026, 12, 24), (8, 0), (12, 30), 270),
    ("XLON", dt.date(2026, 12, 31), (8, 0), (12, 30), 270),
    # HKEX, no DST: 09:30-16:00 HKT = 01:30-08:00 UTC with a 04:00-05:00 UTC lunch break.
    ("XHKG", dt.date(2026, 3, 9), (1, 30), (8, 0), 330),
    ("XHKG", dt.date(2026, 11, 2), (1, 30), (8, 0), 330),
    # HKEX half days (no afternoon): Christmas Eve, New Year's Eve, Lunar New Year's Eve.
    ("XHKG", dt.date(2025, 12, 24), (1, 30), (4, 0), 150),
    ("XHKG", dt.date(2025, 12, 31), (1, 30), (4, 0), 150),
    ("XHKG", dt.date(2026, 2, 16), (1, 30), (4, 0), 150),
    ("XHKG", dt.date(2026, 12, 24), (1, 30), (4, 0), 150),
    ("XHKG", dt.date(2026, 12, 31), (1, 30), (4, 0), 150),
]


@pytest.mark.parametrize("market,session,open_,close,minutes", PUBLISHED_HOURS)
def test_market_calendar_published_hours(cal, market, session, open_, close, minutes):
    c = cal[market]
    hours = c.hours(session)
    assert hours.open == utc(session.year, session.month, session.day, *open_)
    assert hours.close == utc(session.year, session.month, session.day, *close)
    bars = c.minutes(session)
    assert len(bars) == hours.minutes == minutes
    # Left-labelled: the first bar is the open, the last starts one minute before the close.
    assert bars[0] == np.datetime64(hours.open.replace(tzinfo=None), "us")
    assert bars[-1] == np.datetime64((hours.close - dt.timedelta(minutes=1)).replace(tzinfo=None), "us")
    assert np.all(np.diff(bars) > np.timedelta64(0, "us"))


def test_market_calendar_xhkg_lunch_break_is_not_trading(cal):
    c = cal["XHKG"]
    bars = c.minutes(dt.date(2026, 3, 9))
    lunch = (bars >= np.datetime64("2026-03-09T04:00")) & (bars < np.datetime64("2026-03-09T05:00"))
    assert not lunch.any()
    assert c.is_trading_minute(utc(2026, 3, 9, 3, 59))
    assert not c.is_trading_minute(utc(2026, 3, 9, 4, 0))
    assert not c.is_trading_minute(utc(2026, 3, 9, 4, 59))
    assert c.is_trading_minute(utc(2026, 3, 9, 5, 0))
    assert c.is_trading_minute(utc(2026, 3, 9, 7, 59))
    assert not c.is_trading_minute(utc(2026, 3, 9, 8, 0))


def test_market_calendar_us_uk_dst_mismatch_overlap(cal):
    """While the US has moved and the UK has not, London and New York overlap 3 h instead of 2 h."""

    def overlap_minutes(day):
        ny, ln = cal["XNYS"].hours(day), cal["XLON"].hours(day)
        return (min(ny.close, ln.close) - max(ny.open, ln.open)) // dt.timedelta(minutes=1)

    assert overlap_minutes(dt.date(2026, 3, 6)) == 120  # neither moved
    assert overlap_minutes(dt.date(2026, 3, 9)) == 180  # US moved, UK not yet
    assert overlap_minutes(dt.date(2026, 3, 27)) == 180
    assert overlap_minutes(dt.date(2026, 3, 31)) == 120  # both on summer time
    assert overlap_minutes(dt.date(2026, 10, 26)) == 180  # UK back, US not yet
    assert overlap_minutes(dt.date(2026, 10, 30)) == 180
    assert overlap_minutes(dt.date(2026, 11, 2)) == 120


@pytest.mark.parametrize(
    "market,holiday",
    [
        ("XNYS", dt.date(2026, 1, 1)),
        ("XNYS", dt.date(2026, 4, 3)),  # Good Friday
        ("XNYS", dt.date(2026, 7, 3)),  # Independence Day observed
        ("XNYS", dt.date(2026, 11, 26)),  # Thanksgiving
        ("XNYS", dt.date(2026, 12, 25)),
        ("XLON", dt.date(2026, 4, 6)),  # Easter Monday
        ("XLON", dt.date(2026, 12, 28)),  # Boxing Day observed
        ("XHKG", dt.date(2026, 2, 17)),  # Lunar New Year
        ("XHKG", dt.date(2026, 10, 1)),  # National Day
    ],
)
def test_market_calendar_holidays_are_not_sessions(cal, market, holiday):
    assert not cal[market].is_session(holiday)
    assert holiday in cal[market].closed_days(holiday, holiday)


def test_market_calendar_weekends_and_session_lists(cal):
    week = cal["XNYS"].sessions(dt.date(2026, 11, 23), dt.date(2026, 11, 29))
    assert week == [dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25), dt.date(2026, 11, 27)]


def test_market_calendar_24_7_venue(cal):
    c = cal["CRYPTO"]
    days = c.sessions(dt.date(2026, 3, 7), dt.date(2026, 3, 9))
    assert days == [dt.date(2026, 3, 7), dt.date(2026, 3, 8), dt.date(2026, 3, 9)]  # weekend included
    assert len(c.minutes(dt.date(2026, 3, 8))) == 1440  # the US DST day is an ordinary UTC day
    assert c.hours(dt.date(2026, 12, 25)).open == utc(2026, 12, 25)
    assert c.session_of(utc(2026, 3, 8, 23, 59)) == dt.date(2026, 3, 8)
    assert c.session_of(utc(2026, 3, 9, 0, 0)) == dt.date(2026, 3, 9)


def test_market_calendar_session_of_respects_dst(cal):
    c = cal["XNYS"]
    assert c.session_of(utc(2026, 3, 6, 14, 29)) is None
    assert c.session_of(utc(2026, 3, 6, 14, 30)) == dt.date(2026, 3, 6)
    assert c.session_of(utc(2026, 3, 9, 13, 30)) == dt.date(2026, 3, 9)
    assert c.session_of(utc(2026, 3, 9, 20, 0)) is None
    assert c.session_of(utc(2026, 11, 27, 18, 0)) is None  # after the early close
    with pytest.raises(CalendarError, match="no time zone"):
        c.session_of(dt.datetime(2026, 3, 9, 14, 0))


def test_market_calendar_trading_minutes_between_skips_nights_and_weekends(cal):
    c = cal["XNYS"]
    # Friday 2026-03-06 20:00 UTC to Monday 2026-03-09 14:00 UTC: 60 minutes Friday, 30 Monday.
    between = c.trading_minutes_between(utc(2026, 3, 6, 20, 0), utc(2026, 3, 9, 14, 0))
    assert len(between) == 90


def test_market_calendar_overrides_close_typhoon_days(cal):
    version, overrides = load_overrides()
    assert version >= 1
    closed = {(o.market, o.date) for o in overrides}
    assert ("XHKG", dt.date(2023, 9, 1)) in closed and ("XHKG", dt.date(2023, 9, 8)) in closed
    assert all(o.source.startswith("https://") for o in overrides)
    assert not cal["XHKG"].is_session(dt.date(2023, 9, 1))
    assert not cal["XHKG"].is_session(dt.date(2023, 9, 8))
    assert cal["XHKG"].is_session(dt.date(2023, 9, 7))
    # Without the override file exchange-calendars 4.13.2 wrongly lists them as sessions.
    bare = MarketCalendar("XHKG", "XHKG", overrides=())
    assert bare.is_session(dt.date(2023, 9, 1))


def test_market_calendar_override_file_is_validated():
    with pytest.raises(CalendarError, match="lacks source"):
        load_overrides("overrides:\n  - {market: XHKG, date: 2024-01-02, kind: closed}\n")
    with pytest.raises(CalendarError, match="kind"):
        load_overrides("overrides:\n  - {market: XHKG, date: 2024-01-02, kind: moved, source: x}\n")


def test_market_calendar_override_applies_only_to_its_market():
    o = Override("XNYS", dt.date(2026, 3, 9), "closed", "test", "https://example.invalid")
    assert not MarketCalendar("XNYS", "XNYS", (o,)).is_session(dt.date(2026, 3, 9))
    assert MarketCalendar("XLON", "XLON", (o,)).is_session(dt.date(2026, 3, 9))


def test_market_calendar_horizon_warning(cal):
    # XHKG's lunisolar holiday tables end in 2049; our calendar window ends 2028-12-31.
    assert cal["XHKG"].holiday_data_end().year >= 2049
    assert cal["XNYS"].holiday_data_end() is None  # rule based
    assert cal["XNYS"].horizon_warning(dt.date(2026, 11, 30)) is None
    message = cal["XNYS"].horizon_warning(dt.date(2028, 6, 1))
    assert message and "less than a year" in message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal["XHKG"].warn_if_near_horizon(dt.date(2028, 6, 1))
    assert any(issubclass(w.category, CalendarHorizonWarning) for w in caught)


def test_market_calendar_out_of_range_is_a_clear_error(cal):
    with pytest.raises(CalendarError, match="outside the calendar range"):
        cal["XNYS"].sessions(dt.date(2010, 1, 1), dt.date(2010, 1, 31))
    with pytest.raises(CalendarError, match="not a trading session"):
        cal["XNYS"].hours(dt.date(2026, 12, 25))
