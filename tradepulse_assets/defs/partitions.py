"""Session partitions: each market's assets are partitioned by that market's own trading sessions.

A single ``date x market`` grid cannot express per-market holidays, so every market gets its own
time-window partitions with its closed days excluded: weekends, holidays and ad hoc closures never show up
as "missing" in the UI.

When a session becomes a partition is what makes "Missing" in the UI mean "can land":

- a **batch** market's session exists from its regular close (the window ticks at the close, in the
  exchange's own time zone, so DST moves with it): a session still trading, or tomorrow's, is never offered
  as missing. On an early-close day the partition opens at the regular close; the sensors wait for it
  (``session_partition_exists``).
- a **streaming** market's session exists as soon as its day starts (``end_offset=1``): the ingestor lands
  micro-batches while it trades and the session partition is built from them.
"""

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import dagster as dg

from tradepulse_assets.markets import Market
from tradepulse_assets.markets.calendars import CALENDAR_END, session_grid
from tradepulse_assets.storage.home import tradepulse_home

SESSION_KEY_FORMAT = "%Y-%m-%d"


@functools.cache
def session_partitions(market: Market) -> dg.TimeWindowPartitionsDefinition:
    start, end = market.first_session, CALENDAR_END
    # Closed days, time zone and regular close come from a cache under $TRADEPULSE_HOME: building the
    # calendar at every code-location load cost about a second (see markets.calendars.session_grid).
    cache_dir = tradepulse_home() / "cache" / "calendars"
    grid = session_grid(market.market_id, market.calendar, start, end, cache_dir)
    weekdays = "1-5" if grid.weekdays_only else "*"
    closed = [d for d in grid.closed_days if weekdays == "*" or d.weekday() < 5]
    if market.is_streaming:
        timezone, tick = "UTC", dt.time()
    else:
        timezone, tick = grid.timezone_name, grid.regular_close_local
    zone = ZoneInfo(timezone)
    return dg.TimeWindowPartitionsDefinition(
        start=dt.datetime.combine(start, tick, tzinfo=zone),
        fmt=SESSION_KEY_FORMAT,
        cron_schedule=f"{tick.minute} {tick.hour} * * {weekdays}",
        timezone=timezone,
        end_offset=1,
        exclusions=[dt.datetime.combine(d, tick, tzinfo=zone) for d in closed],
    )


def session_partition_exists(market: Market, session: dt.date) -> bool:
    """Whether Dagster has the session as a partition yet (a batch session becomes one at its regular close,
    so after an early close a sensor waits for it instead of requesting a key Dagster would refuse)."""
    return session_partitions(market).has_partition_key(key_of_session(session))


def session_of_key(partition_key: str) -> dt.date:
    return dt.datetime.strptime(partition_key, SESSION_KEY_FORMAT).date()


def key_of_session(session: dt.date) -> str:
    return session.strftime(SESSION_KEY_FORMAT)
