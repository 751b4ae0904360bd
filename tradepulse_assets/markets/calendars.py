"""Trading calendars: which one-minute bars a session must contain.

A thin service over exchange-calendars plus our versioned override file
(``config/calendar_overrides.yaml``) for ad hoc closures the library gets wrong (typhoons,
rainstorms). Every timestamp is UTC and left-labelled: the bar labelled t covers [t, t + 1 min).
The rest of the platform asks this module, never a hard-coded offset, because DST and early
closes move the session in UTC.
"""

import datetime as dt
import functools
import hashlib
import json
import warnings
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import yaml

from tradepulse_assets.core.io import atomic_write

ONE_MINUTE = np.timedelta64(1, "m")
# Calendars are built over a fixed window: early enough for the 2023 overrides, late enough for backfills
# and a year of look-ahead. exchange-calendars raises DateOutOfBounds outside it, which we translate.
CALENDAR_START = dt.date(2019, 1, 1)
CALENDAR_END = dt.date(2028, 12, 31)
HORIZON_WARNING_DAYS = 365
# exchange-calendars and pandas cost about a second to import and 0.3 s per calendar to build: both wait
# until a calendar is first asked a question. The code location only needs each market's closed days, which
# `session_grid` keeps in a small cache file keyed by everything that could change them.


class CalendarError(ValueError):
    """A date outside the calendar's range, or an unknown calendar code."""


class CalendarHorizonWarning(UserWarning):
    """A calendar's holiday data ends less than a year ahead: sessions past it may be wrong."""


@dataclass(frozen=True)
class Override:
    market: str
    date: dt.date
    kind: str
    reason: str
    source: str


@dataclass(frozen=True)
class SessionHours:
    """A session's hours in UTC; ``break_start``/``break_end`` bound a lunch break where there is one."""

    session: dt.date
    open: dt.datetime
    close: dt.datetime
    break_start: dt.datetime | None = None
    break_end: dt.datetime | None = None

    @property
    def minutes(self) -> int:
        total = (self.close - self.open) // dt.timedelta(minutes=1)
        if self.break_start is not None and self.break_end is not None:
            total -= (self.break_end - self.break_start) // dt.timedelta(minutes=1)
        return int(total)

    def contains(self, ts: dt.datetime) -> bool:
        """True when the bar labelled ``ts`` is a trading minute of this session."""
        if not (self.open <= ts < self.close):
            return False
        return not (self.break_start is not None and self.break_start <= ts < self.break_end)


def _utc(ts) -> dt.datetime | None:
    import pandas as pd

    if ts is None or pd.isna(ts):
        return None
    return pd.Timestamp(ts).tz_convert("UTC").to_pydatetime()


def _as_utc(ts: dt.datetime) -> dt.datetime:
    if ts.tzinfo is None:
        raise CalendarError(f"timestamp {ts.isoformat()} has no time zone; the platform works in UTC")
    return ts.astimezone(dt.timezone.utc)


@functools.lru_cache(maxsize=None)
def load_overrides(text: str | None = None) -> tuple[int, tuple[Override, ...]]:
    """Parse the override file (the packaged one unless ``text`` is given): (version, overrides)."""
    if text is None:
        text = resources.files("tradepulse_assets.config").joinpath("calendar_overrides.yaml").read_text()
    doc = yaml.safe_load(text) or {}
    overrides = []
    for i, raw in enumerate(doc.get("overrides", [])):
        missing = {"market", "date", "kind", "source"} - set(raw)
        if missing:
            raise CalendarError(f"calendar_overrides.yaml entry {i} lacks {', '.join(sorted(missing))}")
        if raw["kind"] != "closed":
            raise CalendarError(f"calendar_overrides.yaml entry {i}: kind {raw['kind']!r} is not 'closed'")
        date = raw["date"] if isinstance(raw["date"], dt.date) else dt.date.fromisoformat(str(raw["date"]))
        overrides.append(Override(raw["market"], date, raw["kind"], raw.get("reason", ""), raw["source"]))
    return int(doc.get("version", 0)), tuple(overrides)


class MarketCalendar:
    """One market's calendar: sessions, session hours and the expected bar minutes."""

    def __init__(self, market_id: str, code: str, overrides: tuple[Override, ...] = ()):
        import exchange_calendars as xcals
        import pandas as pd

        try:
            self._cal = xcals.get_calendar(
                code, start=pd.Timestamp(CALENDAR_START), end=pd.Timestamp(CALENDAR_END)
            )
        except xcals.errors.InvalidCalendarName:
            raise CalendarError(f"market {market_id}: unknown exchange calendar code {code!r}") from None
        self.market_id = market_id
        self.code = code
        self.overrides = tuple(o for o in overrides if o.market == market_id)
        closed = pd.DatetimeIndex([pd.Timestamp(o.date) for o in self.overrides])
        schedule = self._cal.schedule
        self._schedule = schedule[~schedule.index.isin(closed)]
        self._session_index = self._schedule.index

    # --- sessions -----------------------------------------------------------------------------
    def _check_range(self, day: dt.date) -> None:
        if not (CALENDAR_START <= day <= CALENDAR_END):
            raise CalendarError(
                f"market {self.market_id}: {day} is outside the calendar range "
                f"{CALENDAR_START}..{CALENDAR_END}"
            )

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading sessions with ``start <= session <= end`` (overrides applied)."""
        import pandas as pd

        self._check_range(start)
        self._check_range(end)
        idx = self._session_index
        window = idx[(idx >= pd.Timestamp(start)) & (idx <= pd.Timestamp(end))]
        return [ts.date() for ts in window]

    def is_session(self, day: dt.date) -> bool:
        import pandas as pd

        self._check_range(day)
        return pd.Timestamp(day) in self._session_index

    def previous_session(self, day: dt.date) -> dt.date | None:
        import pandas as pd

        idx = self._session_index
        earlier = idx[idx < pd.Timestamp(day)]
        return earlier[-1].date() if len(earlier) else None

    def hours(self, session: dt.date) -> SessionHours:
        if not self.is_session(session):
            raise CalendarError(f"market {self.market_id}: {session} is not a trading session")
        import pandas as pd

        row = self._schedule.loc[pd.Timestamp(session)]
        return SessionHours(
            session=session,
            open=_utc(row["open"]),
            close=_utc(row["close"]),
            break_start=_utc(row.get("break_start")),
            break_end=_utc(row.get("break_end")),
        )

    # --- minutes ------------------------------------------------------------------------------
    def minutes(self, session: dt.date) -> np.ndarray:
        """The session's left-labelled bar minutes as ``datetime64[us]`` (naive, UTC), sorted."""
        h = self.hours(session)
        as64 = lambda t: np.datetime64(t.replace(tzinfo=None), "us")  # noqa: E731
        all_minutes = np.arange(as64(h.open), as64(h.close), ONE_MINUTE, dtype="datetime64[us]")
        if h.break_start is None:
            return all_minutes
        in_break = (all_minutes >= as64(h.break_start)) & (all_minutes < as64(h.break_end))
        return all_minutes[~in_break]

    def session_of(self, ts: dt.datetime) -> dt.date | None:
        """The session whose trading minutes include the bar labelled ``ts``, or None."""
        ts = _as_utc(ts)
        for day in (ts.date(), ts.date() - dt.timedelta(days=1)):
            if CALENDAR_START <= day <= CALENDAR_END and self.is_session(day):
                if self.hours(day).contains(ts):
                    return day
        return None

    def is_trading_minute(self, ts: dt.datetime) -> bool:
        return self.session_of(ts) is not None

    def trading_minutes_between(self, start: dt.datetime, end: dt.datetime) -> np.ndarray:
        """Trading minutes labelled in [start, end), across sessions, as ``datetime64[us]``."""
        start, end = _as_utc(start), _as_utc(end)
        if end <= start:
            return np.array([], dtype="datetime64[us]")
        lo = np.datetime64(start.replace(tzinfo=None), "us")
        hi = np.datetime64(end.replace(tzinfo=None), "us")
        chunks = [
            m[(m >= lo) & (m < hi)]
            for m in (self.minutes(s) for s in self.sessions(start.date() - dt.timedelta(days=1), end.date()))
        ]
        return np.concatenate(chunks) if chunks else np.array([], dtype="datetime64[us]")

    @property
    def timezone_name(self) -> str:
        """The exchange's own time zone (IANA name), e.g. ``America/New_York``."""
        return str(self._cal.tz)

    @property
    def regular_close_local(self) -> dt.time:
        """The close of a regular (not early-close) session, in the exchange's time zone."""
        return self._cal.close_times[-1][1]

    @property
    def trades_weekdays_only(self) -> bool:
        return str(getattr(self._cal, "weekmask", "")) == "1111100"

    def closed_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Calendar days in [start, end] that are not sessions (weekends, holidays, overrides)."""
        sessions = set(self.sessions(start, end))
        days = (start + dt.timedelta(days=i) for i in range((end - start).days + 1))
        return [d for d in days if d not in sessions]

    # --- holiday data horizon -----------------------------------------------------------------
    def holiday_data_end(self) -> dt.date | None:
        """Last date covered by every precomputed holiday list (lunisolar calendars), or None when the
        calendar is purely rule-based and has no end."""
        import pandas as pd

        precomputed = getattr(type(self._cal), "precomputed_holidays", None)
        lists = [pd.DatetimeIndex(dates) for dates in (precomputed() if callable(precomputed) else ())]
        lists = [dates for dates in lists if len(dates)]
        if not lists:
            return None
        return min(dates.max() for dates in lists).date()

    def horizon_warning(self, today: dt.date) -> str | None:
        """A message when holiday data (or our calendar window) ends less than a year after ``today``."""
        ends = [d for d in (self.holiday_data_end(), CALENDAR_END) if d is not None]
        horizon = min(ends)
        if (horizon - today).days < HORIZON_WARNING_DAYS:
            return (
                f"market {self.market_id} ({self.code}): holiday data ends {horizon}, less than a year after "
                f"{today}; sessions past it may be wrong: upgrade exchange-calendars or extend the overrides"
            )
        return None

    def warn_if_near_horizon(self, today: dt.date) -> None:
        message = self.horizon_warning(today)
        if message:
            warnings.warn(message, CalendarHorizonWarning, stacklevel=2)


@functools.lru_cache(maxsize=None)
def calendar_for(market_id: str, code: str) -> MarketCalendar:
    """The shared calendar of a market, with the packaged overrides applied (cached per process)."""
    _, overrides = load_overrides()
    return MarketCalendar(market_id, code, overrides)


@dataclass(frozen=True)
class SessionGrid:
    """What a partitions definition needs of a calendar: weekday-only trading and the closed days."""

    weekdays_only: bool
    closed_days: tuple[dt.date, ...]
    timezone_name: str
    regular_close_local: dt.time


def _grid_cache_key(market_id: str, code: str, start: dt.date, end: dt.date) -> str:
    version, overrides = load_overrides()
    parts = [market_id, code, start, end, metadata.version("exchange-calendars"), version, overrides]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def session_grid(
    market_id: str, code: str, start: dt.date, end: dt.date, cache_dir: Path | None
) -> SessionGrid:
    """Closed days in [start, end] and whether the market trades weekdays only.

    Read from ``cache_dir`` when a cache file for exactly these inputs (market, code, window, library
    version, overrides) exists; otherwise computed from the calendar and written there atomically. A cache
    that cannot be read or written is ignored: it is an optimisation, never a source of truth.
    """
    path = None
    if cache_dir is not None:
        path = cache_dir / f"sessions-{market_id}-{_grid_cache_key(market_id, code, start, end)}.json"
    try:
        doc = json.loads(path.read_text()) if path is not None and path.exists() else None
        if doc is not None:
            closed = tuple(dt.date.fromisoformat(d) for d in doc["closed_days"])
            close = dt.time.fromisoformat(doc["regular_close_local"])
            return SessionGrid(doc["weekdays_only"], closed, doc["timezone_name"], close)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    calendar = calendar_for(market_id, code)
    grid = SessionGrid(
        calendar.trades_weekdays_only,
        tuple(calendar.closed_days(start, end)),
        calendar.timezone_name,
        calendar.regular_close_local,
    )
    if path is not None:
        try:
            closed = [d.isoformat() for d in grid.closed_days]
            doc = {
                "weekdays_only": grid.weekdays_only,
                "closed_days": closed,
                "timezone_name": grid.timezone_name,
                "regular_close_local": grid.regular_close_local.isoformat(),
            }
            atomic_write(path, json.dumps(doc).encode(), fsync=False)  # a cache: rebuilt if lost
        except OSError:
            pass
    return grid
