"""A small seeded generator of clean sessions for the gate tests (and the calibration of their thresholds).

Clean means what a healthy vendor delivers: one bar per symbol per expected minute (from the market's
calendar, so DST, early closes and lunch breaks are honoured), a random walk with heavy-ish tails
(Student-t, 4 degrees of freedom), consistent OHLC, positive volume, delivered minute by minute.
"""

import datetime as dt

import numpy as np
import polars as pl

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS

MINUTE_VOL = 1e-3  # a 1-minute log-return scale typical of liquid equities


def clean_session(market_id: str, session: dt.date, seed: int = 7, symbols=None) -> pl.DataFrame:
    """Bars for every symbol of ``market_id`` (or ``symbols``) at every expected minute of ``session``."""
    market = load_registry().get(market_id)
    cal = calendar_for(market.market_id, market.calendar)
    minutes = cal.minutes(session)
    symbols = list(symbols or market.symbols)
    rng = np.random.default_rng(seed)
    n_min, n_sym = minutes.size, len(symbols)
    returns = MINUTE_VOL * rng.standard_t(4, size=(n_min, n_sym)) / np.sqrt(2.0)  # t4 has variance 2
    start = rng.uniform(20, 500, size=n_sym)
    close = start * np.exp(np.cumsum(returns, axis=0))
    open_ = np.vstack([start, close[:-1]])
    wick = MINUTE_VOL * np.abs(rng.standard_normal((2, n_min, n_sym)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.integers(100, 50_000, size=(n_min, n_sym)).astype(float)
    ts = np.repeat(minutes.astype("datetime64[us]"), n_sym)
    frame = pl.DataFrame(
        {
            "symbol": np.tile(np.array(symbols, dtype=object), n_min).tolist(),
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
            # the optional columns, as the simulator ships them (derived: no extra random draws)
            "trade_count": np.maximum(1, volume // 80).astype(np.int64).ravel(),
            "vwap": ((open_ + high + low + close) / 4.0).ravel(),
        }
    )
    return frame.cast({**BAR_COLUMNS, **OPTIONAL_BAR_COLUMNS})


def bars(rows: list[tuple]) -> pl.DataFrame:
    """A hand-built frame from (symbol, ts, open, high, low, close, volume) tuples."""
    return pl.DataFrame(rows, schema=list(BAR_COLUMNS), orient="row").cast(BAR_COLUMNS)


def utc(y, mo, d, h=0, mi=0, s=0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC)
