"""Ingestion lag per market, counted against the calendar so closed markets are never "late".

- Streaming: the age of the oldest bar that is complete (a bar labelled t is complete at t + 1 min) but
  not landed after the ingestor's watermark, counted in trading time only: a weekend, a holiday, the
  XHKG lunch break or an early close adds nothing.
- Batch: a session's file is due at its close; the lag is the time since the close of the oldest
  closed session (within the look-back) that has not reached production.
Both kinds report the gap windows and the missing sessions a backfill must fill.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tradepulse_assets.incidents.model import GapWindow
from tradepulse_assets.markets import Market, calendar_for

ONE_MINUTE = dt.timedelta(minutes=1)
DEFAULT_LOOKBACK_SESSIONS = 5


@dataclass(frozen=True)
class LagReading:
    market: str
    measured_at: dt.datetime
    lag_seconds: float
    sla_seconds: int
    watermark: dt.datetime | None
    missing_sessions: tuple[dt.date, ...]
    gap_windows: tuple[GapWindow, ...]

    @property
    def breached(self) -> bool:
        return self.lag_seconds > self.sla_seconds

    def to_metadata(self) -> dict:
        return {
            "market": self.market,
            "lag_seconds": round(self.lag_seconds, 3),
            "sla_seconds": self.sla_seconds,
            "breached": self.breached,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "missing_sessions": [s.isoformat() for s in self.missing_sessions],
            "gap_windows": [
                {"start": w.start.isoformat(), "end": w.end.isoformat(), "minutes": w.missing_minutes}
                for w in self.gap_windows
            ],
        }


def _as_datetime(ts: np.datetime64) -> dt.datetime:
    return dt.datetime.fromisoformat(str(ts.astype("datetime64[us]"))).replace(tzinfo=dt.timezone.utc)


def minute_windows(market_id: str, minutes: np.ndarray, calendar) -> list[GapWindow]:
    """Contiguous runs of trading minutes (consecutive within a session) as gap windows."""
    if len(minutes) == 0:
        return []
    breaks = np.nonzero(np.diff(minutes) != np.timedelta64(1, "m"))[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(minutes) - 1]])
    windows = []
    for a, b in zip(starts, ends):
        start = _as_datetime(minutes[a])
        end = _as_datetime(minutes[b]) + ONE_MINUTE
        windows.append(GapWindow(market_id, start, end, int(b - a + 1), session=str(calendar.session_of(start))))
    return windows


def streaming_lag_seconds(due: np.ndarray, now: dt.datetime, calendar) -> float:
    """Trading seconds since the oldest of the ``due`` (complete, not landed) bars became complete.

    The later due bars are whole trading minutes since then; the minute forming at ``now`` counts only if
    it is a trading minute.
    """
    if len(due) == 0:
        return 0.0
    last_complete = _as_datetime(due[-1]) + ONE_MINUTE
    forming = now.replace(second=0, microsecond=0)
    partial = (now - last_complete).total_seconds() if calendar.is_trading_minute(forming) else 0.0
    return 60.0 * (len(due) - 1) + max(0.0, min(partial, 60.0))


def closed_sessions(market: Market, now: dt.datetime, lookback: int = DEFAULT_LOOKBACK_SESSIONS) -> list[dt.date]:
    """The last ``lookback`` sessions whose close is at or before ``now`` (not before ``first_session``)."""
    if lookback < 1:
        raise ValueError(f"look-back must be at least one session, got {lookback}")
    calendar = calendar_for(market.market_id, market.calendar)
    start = max(market.first_session, now.date() - dt.timedelta(days=lookback * 3 + 10))
    # closes increase with the session: at most the last two (a close after midnight UTC) are still open
    candidates = calendar.sessions(start, now.date())[-(lookback + 2):]
    sessions = [s for s in candidates if calendar.hours(s).close <= now]
    return sessions[-lookback:]


def measure_lag(
    market: Market,
    now: dt.datetime,
    promoted_sessions: Iterable[dt.date],
    *,
    stream_watermark: dt.datetime | None = None,
    lookback: int = DEFAULT_LOOKBACK_SESSIONS,
) -> LagReading:
    calendar = calendar_for(market.market_id, market.calendar)
    promoted = set(promoted_sessions)
    missing = tuple(s for s in closed_sessions(market, now, lookback) if s not in promoted)
    lag = 0.0
    windows: list[GapWindow] = []
    if missing:
        oldest_close = calendar.hours(missing[0]).close
        lag = max(0.0, (now - oldest_close).total_seconds())
        for s in missing:
            h = calendar.hours(s)
            windows.append(GapWindow(market.market_id, h.open, h.close, h.minutes, session=s.isoformat()))
    if market.is_streaming and stream_watermark is not None:
        due = calendar.trading_minutes_between(stream_watermark + ONE_MINUTE, now - ONE_MINUTE + dt.timedelta(microseconds=1))
        stream_lag = streaming_lag_seconds(due, now, calendar)
        lag = max(lag, stream_lag)
        if stream_lag > market.lag_sla_seconds:  # a bar or two in flight is latency, not a gap
            done = {s.isoformat() for s in missing}
            windows.extend(w for w in minute_windows(market.market_id, due, calendar) if w.session not in done)
    return LagReading(
        market=market.market_id,
        measured_at=now,
        lag_seconds=lag,
        sla_seconds=market.lag_sla_seconds,
        watermark=stream_watermark,
        missing_sessions=missing,
        gap_windows=tuple(windows),
    )
