"""Session partitions: each market's assets are partitioned by that market's own trading sessions.

A single ``date x market`` grid cannot express per-market holidays, so every market gets its own
daily time-window partitions with its closed days excluded: weekends, holidays and ad hoc closures
never show up as "missing" in the UI, and today's session exists as soon as the day starts
(``end_offset=1``) so a streaming market can build it while it trades.
"""

import datetime as dt
import functools

import dagster as dg

from tradepulse_assets.markets import Market, calendar_for
from tradepulse_assets.markets.calendars import CALENDAR_END

SESSION_KEY_FORMAT = "%Y-%m-%d"


@functools.cache
def session_partitions(market: Market) -> dg.TimeWindowPartitionsDefinition:
    calendar = calendar_for(market.market_id, market.calendar)
    start, end = market.first_session, CALENDAR_END.date()
    if calendar.trades_weekdays_only:
        cron = "0 0 * * 1-5"
        closed = [d for d in calendar.closed_days(start, end) if d.weekday() < 5]
    else:
        cron = "0 0 * * *"
        closed = calendar.closed_days(start, end)
    return dg.TimeWindowPartitionsDefinition(
        start=dt.datetime.combine(start, dt.time(), tzinfo=dt.timezone.utc),
        fmt=SESSION_KEY_FORMAT,
        cron_schedule=cron,
        timezone="UTC",
        end_offset=1,
        exclusions=[dt.datetime.combine(d, dt.time(), tzinfo=dt.timezone.utc) for d in closed],
    )


def session_of_key(partition_key: str) -> dt.date:
    return dt.datetime.strptime(partition_key, SESSION_KEY_FORMAT).date()


def key_of_session(session: dt.date) -> str:
    return session.strftime(SESSION_KEY_FORMAT)
