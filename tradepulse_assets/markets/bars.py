"""The one-minute bar schema, defined once for vendors, the lake and the quality gates.

Required columns are what every vendor ships; ``trade_count`` and ``vwap`` are optional.
Timestamps are UTC, left-labelled: ``ts`` covers [ts, ts + 1 min).

``BarSchema`` (the pandera model) is built on first use: pandera imports pandas, about a second that the code
location and the CLI would otherwise pay on every start for a model only the schema gate runs.
"""

import functools

import polars as pl

SCHEMA_VERSION = 1

BAR_COLUMNS: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}
OPTIONAL_BAR_COLUMNS: dict[str, pl.DataType] = {
    "trade_count": pl.Int64(),
    "vwap": pl.Float64(),
}


@functools.cache
def _bar_schema_model() -> type:
    import pandera.polars as pa

    class BarSchema(pa.DataFrameModel):
        """Structural contract of a bar file: names, types, nullability.

        Semantic rules (OHLC consistency, calendar alignment, duplicates...) are quality gates with
        evidence, not schema errors, so a person sees which rows are wrong and why.
        """

        symbol: str = pa.Field(nullable=False)
        ts: pl.Datetime(time_unit="us", time_zone="UTC") = pa.Field(nullable=False)
        open: float = pa.Field(nullable=False)
        high: float = pa.Field(nullable=False)
        low: float = pa.Field(nullable=False)
        close: float = pa.Field(nullable=False)
        volume: float = pa.Field(nullable=False)
        trade_count: pl.Int64 | None = pa.Field(nullable=True)
        vwap: float | None = pa.Field(nullable=True)

        class Config:
            strict = True  # an unexpected (e.g. renamed) column is a schema mismatch
            coerce = False

    return BarSchema


def __getattr__(name: str):
    if name == "BarSchema":
        return _bar_schema_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

