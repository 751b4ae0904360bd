"""A generic mapping for any per-session Parquet or CSV delivery, declared in a small TOML table.

```toml
[vendors.acme]
format = "mapped"
file = "{market}/{session:%Y%m%d}_bars.csv.gz"   # one file per session; the extension picks the parser
time_zone = "America/New_York"   # zone of naive timestamps (default UTC)
time_unit = "text"               # text | s | ms | us | ns (integer epochs)
bar_label = "start"              # start | end (a bar stamped with the minute it closes)
price_scale = 0.0001             # multiply prices (integer ten-thousandths -> units); default 1
volume_scale = 1
universe = "all"                 # all | registry (keep only the market's symbols)
[vendors.acme.columns]           # ours = theirs; trade_count and vwap optional
symbol = "RIC"
ts = "Time"
open = "Open"
high = "High"
low = "Low"
close = "Last"
volume = "Volume"
```

Why validate at start-up: a typo in a column name or an unknown zone would otherwise surface as a schema
gate failure on the first session, after a run; here it stops the code location with the field named. At
landing, a file that lacks a declared column is a ``parse`` fault naming the column and the file.
"""

import datetime as dt
import gzip
import io
import zoneinfo
from dataclasses import dataclass

import polars as pl

from tradepulse_assets.feeds.formats import check_pattern
from tradepulse_assets.feeds.manifest import BAR_FILE_SUFFIXES, BarFileError, parse_bar_file, write_bar_file
from tradepulse_assets.markets import Market
from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS

TIME_UNITS = ("text", "s", "ms", "us", "ns")
BAR_LABELS = ("start", "end")
OPTIONS = (
    "file",
    "columns",
    "time_zone",
    "time_unit",
    "bar_label",
    "price_scale",
    "volume_scale",
    "universe",
)
PRICES = ("open", "high", "low", "close", "vwap")


@dataclass(frozen=True)
class Mapping:
    file: str
    columns: tuple[tuple[str, str], ...]  # (ours, theirs)
    time_zone: str = "UTC"
    time_unit: str = "text"
    bar_label: str = "start"
    price_scale: float = 1.0
    volume_scale: float = 1.0
    universe: str = "all"

    @property
    def theirs(self) -> dict[str, str]:
        return dict(self.columns)


def parse_mapping(options: dict, where: str) -> Mapping:
    """Validate a ``[vendors.<name>]`` table of format ``mapped``; every error names the field."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    pattern = check_pattern(options.get("file"), f"{where} file")
    if not pattern.lower().endswith(BAR_FILE_SUFFIXES):
        raise ValueError(f"{where} file: {pattern!r} must end in one of {', '.join(BAR_FILE_SUFFIXES)}")
    columns = options.get("columns")
    if not isinstance(columns, dict):
        raise ValueError(f"{where}: needs a [columns] table mapping our column names to the vendor's")
    known = {*BAR_COLUMNS, *OPTIONAL_BAR_COLUMNS}
    extra = sorted(set(columns) - known)
    if extra:
        raise ValueError(
            f"{where} columns: {', '.join(extra)} are not bar columns ({', '.join(sorted(known))})"
        )
    missing = [c for c in BAR_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{where} columns: missing {', '.join(missing)}")
    if not all(isinstance(v, str) and v for v in columns.values()):
        raise ValueError(f"{where} columns: every vendor column name must be a non-empty string")
    zone = options.get("time_zone", "UTC")
    try:
        zoneinfo.ZoneInfo(str(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{where} time_zone: {zone!r} is not an IANA time zone (e.g. America/New_York)"
        ) from None
    checks = (
        ("time_unit", TIME_UNITS, "text"),
        ("bar_label", BAR_LABELS, "start"),
        ("universe", ("all", "registry"), "all"),
    )
    for key, allowed, default in checks:
        if options.get(key, default) not in allowed:
            raise ValueError(f"{where} {key}: {options[key]!r} is not one of {', '.join(allowed)}")
    scales = {}
    for key in ("price_scale", "volume_scale"):
        value = options.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{where} {key}: {value!r} must be a positive number")
        scales[key] = float(value)
    return Mapping(
        file=pattern,
        columns=tuple(columns.items()),
        time_zone=str(zone),
        time_unit=options.get("time_unit", "text"),
        bar_label=options.get("bar_label", "start"),
        universe=options.get("universe", "all"),
        **scales,
    )


def apply_scale(values: pl.Series, scale: float) -> pl.Series:
    """``values * scale``, as a numpy division when ``1/scale`` is whole (1e-4, 1e-9...): ``n / 10_000`` is
    the double nearest the decimal, which ``n * 0.0001`` is not always (and polars may multiply by the
    reciprocal even when asked to divide), and bars must match to the bit."""
    if scale == 1.0:
        return values
    inverse = 1.0 / scale
    if abs(inverse - round(inverse)) < 1e-9 * inverse:
        scaled = pl.Series(values.name, values.cast(pl.Float64).to_numpy() / round(inverse))
        return scaled.fill_nan(None) if values.null_count() else scaled
    return values * scale


def _read(name: str, data: bytes) -> pl.DataFrame:
    if name.lower().endswith(".parquet"):
        return parse_bar_file(name, data)
    try:  # CSV: every column as text first, so the mapping (not inference) decides the types
        text = gzip.decompress(data) if name.lower().endswith(".gz") else data
        return pl.read_csv(io.BytesIO(text), infer_schema=False)
    except Exception as exc:  # noqa: BLE001 - every parser failure is one typed error naming the file
        raise BarFileError(
            name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None


def _timestamps(mapping: Mapping, column: pl.Series) -> pl.Series:
    if mapping.time_unit != "text":
        values = column.cast(pl.Int64, strict=True)
        ts = (
            pl.from_epoch(values, time_unit=mapping.time_unit)
            .dt.cast_time_unit("us")
            .dt.replace_time_zone("UTC")
        )
    elif column.dtype == pl.String:
        ts = column.str.to_datetime(time_unit="us", strict=True)
    else:
        ts = column.cast(
            pl.Datetime("us", column.dtype.time_zone if isinstance(column.dtype, pl.Datetime) else None)
        )
    if ts.dtype.time_zone is None:
        ts = ts.dt.replace_time_zone(mapping.time_zone, ambiguous="raise", non_existent="raise")
    ts = ts.dt.convert_time_zone("UTC")
    return ts - dt.timedelta(minutes=1) if mapping.bar_label == "end" else ts


def decode_mapped(mapping: Mapping, name: str, data: bytes, market: Market) -> pl.DataFrame:
    """The vendor's file as bars: columns renamed, typed, scaled; time converted to UTC bar starts."""
    raw = _read(name, data)
    theirs = mapping.theirs
    absent = [f"{their!r} (for {ours})" for ours, their in theirs.items() if their not in raw.columns]
    if absent:
        raise BarFileError(
            name, f"missing column(s) {', '.join(absent)}; the file has {', '.join(raw.columns)}"
        )
    try:
        out = {}
        for ours, their in theirs.items():
            col = raw[their]
            if ours == "ts":
                out[ours] = _timestamps(mapping, col)
            elif ours == "symbol":
                out[ours] = col.cast(pl.String)
            else:
                typed = col.cast({**BAR_COLUMNS, **OPTIONAL_BAR_COLUMNS}[ours], strict=True)
                scale = (
                    mapping.price_scale
                    if ours in PRICES
                    else mapping.volume_scale
                    if ours == "volume"
                    else 1.0
                )
                out[ours] = apply_scale(typed, scale)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise BarFileError(name, f"column {their!r} (for {ours}): {str(exc).splitlines()[0]}") from None
    frame = pl.DataFrame(out)
    if mapping.universe == "registry":
        frame = frame.filter(pl.col("symbol").is_in(list(market.symbols)))
    order = [c for c in (*BAR_COLUMNS, *OPTIONAL_BAR_COLUMNS) if c in frame.columns]
    return frame.select(order)


def encode_mapped(mapping: Mapping, name: str, bars: pl.DataFrame) -> bytes:
    """The inverse: our bars as this vendor would deliver them (the simulator publishing in its format)."""
    ts = pl.col("ts") + (dt.timedelta(minutes=1) if mapping.bar_label == "end" else dt.timedelta(0))
    if mapping.time_unit != "text":
        ts = ts.dt.epoch(mapping.time_unit)
    elif mapping.time_zone != "UTC":
        ts = ts.dt.convert_time_zone(mapping.time_zone).dt.replace_time_zone(None)
    exprs = []
    for ours, their in mapping.columns:
        if ours not in bars.columns:
            continue
        expr = ts if ours == "ts" else pl.col(ours)
        if ours in PRICES and mapping.price_scale != 1.0:
            expr = (pl.col(ours) / mapping.price_scale).round(0).cast(pl.Int64)
        if ours == "volume" and mapping.volume_scale != 1.0:
            expr = (pl.col(ours) / mapping.volume_scale).round(0).cast(pl.Int64)
        exprs.append(expr.alias(their))
    frame = bars.select(exprs)
    if name.lower().endswith(".parquet"):
        return write_bar_file(name, frame)
    text = frame.write_csv().encode()
    return gzip.compress(text, compresslevel=6, mtime=0) if name.lower().endswith(".gz") else text
