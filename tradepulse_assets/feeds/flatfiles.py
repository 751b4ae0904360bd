"""Minute-aggregate flat files: one gzip CSV per day with every ticker, as flat-file vendors publish them.

Layout (the common one, e.g. ``<root>/2026/03/2026-03-09.csv.gz``; the path pattern is a vendor option):
columns ``ticker, volume, open, close, high, low, window_start, transactions``, ``window_start`` the bar
start in epoch nanoseconds (UTC), prices in units, ``transactions`` the trade count.

Why the session window and the universe filter: such a file carries the whole tape of a day, extended hours
included. The session's bars are the rows in [open, close) of the market's calendar, for the market's
symbol universe (``universe = "registry"``, the default) or every ticker (``universe = "all"``).
These files carry no hash and no condition: the manifest hash is taken from the bytes read, the condition is
``available``, and gzip's CRC is what catches a damaged file (a ``parse`` fault at landing).
"""

import datetime as dt
import gzip
import io

import polars as pl

from tradepulse_assets.feeds.manifest import BarFileError
from tradepulse_assets.markets import Market

COLUMNS = ("ticker", "volume", "open", "close", "high", "low", "window_start", "transactions")
DEFAULT_PATH = "{session:%Y}/{session:%m}/{session}.csv.gz"
UNIVERSES = ("registry", "all")
_SCHEMA = {
    "ticker": pl.String,
    "volume": pl.Float64,
    "open": pl.Float64,
    "close": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "window_start": pl.Int64,
    "transactions": pl.Int64,
}


def decode_minute_aggs(
    name: str,
    data: bytes,
    market: Market,
    window: tuple[dt.datetime, dt.datetime],
    universe: str = "registry",
) -> pl.DataFrame:
    try:
        text = gzip.decompress(data) if name.endswith(".gz") else data
        frame = pl.read_csv(io.BytesIO(text), schema_overrides=_SCHEMA)
    except (OSError, EOFError, gzip.BadGzipFile, pl.exceptions.PolarsError) as exc:
        raise BarFileError(
            name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise BarFileError(
            name, f"missing column(s) {', '.join(missing)} (minute aggregates need {', '.join(COLUMNS)})"
        )
    start, end = (int(t.timestamp()) * 1_000_000_000 for t in window)
    frame = frame.filter((pl.col("window_start") >= start) & (pl.col("window_start") < end))
    if universe == "registry":
        frame = frame.filter(pl.col("ticker").is_in(list(market.symbols)))
    ts = pl.from_epoch("window_start", time_unit="ns").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    return frame.select(
        pl.col("ticker").alias("symbol"),
        ts.alias("ts"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        pl.col("transactions").alias("trade_count"),
    ).sort("ts", "symbol")


def encode_minute_aggs(bars: pl.DataFrame) -> bytes:
    """A day file from our bars (the simulator publishing as a flat-file vendor); same frame, same bytes."""
    volume = pl.col("volume")
    whole = bars.height == 0 or bool((bars["volume"] == bars["volume"].round(0)).all())
    frame = bars.sort("ts", "symbol").select(
        pl.col("symbol").alias("ticker"),
        volume.cast(pl.Int64) if whole else volume,
        "open",
        "close",
        "high",
        "low",
        pl.col("ts").dt.epoch("ns").alias("window_start"),
        (pl.col("trade_count") if "trade_count" in bars.columns else pl.lit(None, pl.Int64)).alias(
            "transactions"
        ),
    )
    return gzip.compress(frame.write_csv().encode(), compresslevel=6, mtime=0)


def check_options(options: dict, where: str) -> dict:
    unknown = sorted(set(options) - {"path", "universe"})
    if unknown:
        raise ValueError(
            f"{where}: unknown option(s) {', '.join(unknown)} for flat_minute_aggs (path, universe)"
        )
    universe = options.get("universe", "registry")
    if universe not in UNIVERSES:
        raise ValueError(f"{where}: universe {universe!r} is not one of {', '.join(UNIVERSES)}")
    return {"path": options.get("path", DEFAULT_PATH), "universe": universe}
