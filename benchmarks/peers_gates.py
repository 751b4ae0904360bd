"""The peers of the gate benchmark: the same 21 counts as the project's gate suite, written the way a
competent engineer would write them in DuckDB SQL and in plain polars (no project code).

Both work on one table of bars (symbol, ts, open, high, low, close, volume) in delivery order and the
session's expected minutes (ts, idx). What they must reproduce, exactly as the project's gates define it:

- row checks (OHLC, volume) count rows; duplicates are (symbol, ts) keys delivered more than once;
- out of order: per symbol, in delivery order, a ts not above the previous row's;
- a (symbol, minute) cell is present when an aligned bar lands on it; a duplicated cell keeps the LAST
  delivered bar (its close and whether o=h=l=c decide returns and frozen runs);
- gap windows: maximal runs of minutes no symbol delivered (market-wide), then per symbol the maximal runs of
  its other missing minutes;
- returns: log close against the symbol's previous present bar with a finite positive close; a spike is a
  robust z (median / MAD * 1.4826, MeanAD * 1.253314 when the MAD is 0) above the threshold, a scale break a
  tenfold move;
- a frozen run: consecutive grid minutes whose bars have o=h=l=c and the same close, at least N bars long.

Tuning shared by both: symbols become small integer codes (DuckDB ENUM, polars Categorical) before any
partitioning; duplicates and neighbours come from one sort by (symbol, minute, delivery) and lag/lead, not a
10-million-group aggregate; gap windows are counted from the intervals between a symbol's present minutes
against a prefix count of market-wide minutes (no per-cell expansion); frozen runs are islands among the few
linked rows, not a running sum over every cell.
"""

import math

import polars as pl

LN_10 = math.log(10.0)
MAD_TO_SIGMA, MEANAD_TO_SIGMA = 1.4826, 1.253314

DUCKDB_SETTINGS = (
    "SET threads = 2",
    "SET memory_limit = '6GB'",
    "SET preserve_insertion_order = false",  # nothing below depends on the order rows come out in
)

#: Load a Parquet file into a typed table: symbols as an ENUM (2-byte codes), delivery order as ``seq``.
DUCKDB_LOAD = """
CREATE TYPE sym_t AS ENUM (SELECT DISTINCT symbol FROM read_parquet($path) WHERE symbol IS NOT NULL);
CREATE TABLE bars AS
  SELECT file_row_number AS seq, symbol::sym_t AS sym, ts, open, high, low, close, volume
  FROM read_parquet($path, file_row_number = true);
"""

DUCKDB_GATES = """
WITH
rowchecks AS (
  SELECT count(*) AS rows,
         count(*) FILTER (ok AND low > least(open, close)) AS low_above_body,
         count(*) FILTER (ok AND high < greatest(open, close)) AS high_below_body,
         count(*) FILTER (ok AND low > high) AS low_above_high,
         count(*) FILTER (NOT ok) AS non_positive_or_non_finite,
         count(*) FILTER (NOT ok OR low > least(open, close) OR high < greatest(open, close) OR low > high)
           AS ohlc_rows_violating,
         count(*) FILTER (volume < 0) AS negative,
         count(*) FILTER (NOT isfinite(volume)) AS non_finite
  FROM (SELECT open, high, low, close, volume,
               isfinite(open) AND open > 0 AND isfinite(high) AND high > 0 AND isfinite(low) AND low > 0
               AND isfinite(close) AND close > 0 AS ok
        FROM bars)),
mono AS (
  SELECT count(*) FILTER (ts <= prev_ts) AS rows_out_of_order
  FROM (SELECT ts, lag(ts) OVER (PARTITION BY sym ORDER BY seq) AS prev_ts FROM bars)),
located AS (
  SELECT b.seq, b.sym, b.ts, b.close, e.idx,
         b.open = b.high AND b.high = b.low AND b.low = b.close AND isfinite(b.close) AS frozen
  FROM bars b LEFT JOIN expected e ON b.ts = e.ts),
off_grid_dups AS (  -- bars off the calendar can repeat a key too (a small set)
  SELECT coalesce(sum(n - 1), 0) AS duplicate_rows, count(*) AS duplicated_keys
  FROM (SELECT count(*) AS n FROM located WHERE idx IS NULL GROUP BY sym, ts HAVING count(*) > 1)),
-- one sort of the aligned bars by (symbol, minute, delivery): duplicates, survivors and gaps from neighbours
cells AS (
  SELECT sym, idx, close, frozen,
         lag(idx) OVER w AS prev_idx, lead(idx) OVER w AS next_idx
  FROM located WHERE idx IS NOT NULL
  WINDOW w AS (PARTITION BY sym ORDER BY idx, seq)),
on_grid AS (
  SELECT count(*) FILTER (next_idx = idx) AS duplicate_rows,
         count(*) FILTER (next_idx = idx AND prev_idx IS DISTINCT FROM idx) AS duplicated_keys,
         count(*) FILTER (next_idx IS DISTINCT FROM idx) AS present,
         count(*) FILTER (next_idx IS NULL) AS symbols_on_grid
  FROM cells),
symbols AS (SELECT count(DISTINCT sym) AS n FROM bars),
minutes AS (SELECT count(*) AS n FROM expected),
-- market-wide missing minutes, and a prefix count of the runs of the other minutes
delivered_minutes AS (SELECT DISTINCT idx FROM located WHERE idx IS NOT NULL),
grid AS (
  SELECT idx, market_wide,
         sum(CASE WHEN NOT market_wide AND prev_market_wide THEN 1 ELSE 0 END) OVER (ORDER BY idx) AS runs_to
  FROM (SELECT e.idx, d.idx IS NULL AS market_wide,
               coalesce(lag(d.idx IS NULL) OVER (ORDER BY e.idx), true) AS prev_market_wide
        FROM expected e LEFT JOIN delivered_minutes d ON e.idx = d.idx)),
market_wide_windows AS (
  SELECT count(*) AS n
  FROM (SELECT market_wide, lag(market_wide) OVER (ORDER BY idx) AS prev FROM grid)
  WHERE market_wide AND prev IS NOT TRUE),
intervals AS (  -- a symbol's missing minutes [lo, hi] between present ones, before its first, after its last
  SELECT coalesce(prev_idx + 1, 0) AS lo, idx - 1 AS hi FROM cells
  WHERE prev_idx IS DISTINCT FROM idx AND idx > coalesce(prev_idx + 1, 0)
  UNION ALL
  SELECT idx + 1, (SELECT n FROM minutes) - 1 FROM cells
  WHERE next_idx IS NULL AND idx < (SELECT n FROM minutes) - 1),
residual_windows AS (  -- runs of non-market-wide minutes inside each interval
  SELECT coalesce(sum(h.runs_to - l.runs_to + CASE WHEN l.market_wide THEN 0 ELSE 1 END), 0) AS n
  FROM intervals i JOIN grid l ON l.idx = i.lo JOIN grid h ON h.idx = i.hi),
whole_session_windows AS (  -- a symbol with no bar on the grid misses every minute
  SELECT ((SELECT n FROM symbols) - (SELECT symbols_on_grid FROM on_grid)) * max(runs_to) AS n FROM grid),
-- the surviving bar of each cell; a window per (symbol, has a finite positive close) gives the previous
-- return-bearing bar, and the adjacent frozen bar (a link needs equal closes, so the same class)
survivors AS (
  SELECT sym, idx, close, frozen, isfinite(close) AND close > 0 AS valid FROM cells
  WHERE next_idx IS DISTINCT FROM idx),
neighbours AS (
  SELECT sym, idx, valid, frozen, close,
         lag(close) OVER w AS prev_close, lag(idx) OVER w AS prev_idx, lag(frozen) OVER w AS prev_frozen
  FROM survivors WINDOW w AS (PARTITION BY sym, valid ORDER BY idx)),
rets AS (SELECT sym, ln(close) - ln(prev_close) AS r FROM neighbours WHERE valid AND prev_close IS NOT NULL),
centre AS (SELECT sym, median(r) AS m FROM rets GROUP BY sym),
devs AS (SELECT sym, r, abs(r - m) AS d FROM rets JOIN centre USING (sym)),
spread AS (
  SELECT sym, CASE WHEN $mad * median(d) > 0 THEN $mad * median(d)
                   WHEN $meanad * avg(d) > 0 THEN $meanad * avg(d) END AS s
  FROM devs GROUP BY sym),
moves AS (
  SELECT count(*) AS returns,
         count(*) FILTER (s IS NOT NULL AND d / s > $spike_z) AS spikes,
         count(*) FILTER (abs(r) > $ln10) AS scale_breaks
  FROM devs JOIN spread USING (sym)),
links AS (
  SELECT sym, idx - row_number() OVER (PARTITION BY sym ORDER BY idx) AS island
  FROM neighbours WHERE frozen AND prev_frozen AND prev_idx = idx - 1 AND close = prev_close),
stale AS (
  SELECT count(*) AS stale_runs, coalesce(sum(bars), 0) AS stale_bars
  FROM (SELECT count(*) + 1 AS bars FROM links GROUP BY sym, island) WHERE bars >= $stale_min)
SELECT rowchecks.*, mono.rows_out_of_order,
       on_grid.duplicate_rows + off_grid_dups.duplicate_rows AS duplicate_rows,
       on_grid.duplicated_keys + off_grid_dups.duplicated_keys AS duplicated_keys,
       (SELECT count(*) FROM located WHERE idx IS NULL) AS rows_misaligned,
       symbols.n * minutes.n AS expected, on_grid.present, symbols.n * minutes.n - on_grid.present AS missing,
       CASE WHEN symbols.n * minutes.n = on_grid.present THEN 0
            ELSE market_wide_windows.n + residual_windows.n + whole_session_windows.n END AS gap_windows,
       moves.*, stale.*
FROM rowchecks, mono, off_grid_dups, on_grid, symbols, minutes, market_wide_windows, residual_windows,
     whole_session_windows, moves, stale
"""


def duckdb_connect():
    import duckdb

    con = duckdb.connect()
    for statement in DUCKDB_SETTINGS:
        con.execute(statement)
    return con


def duckdb_load(con, path: str, expected: pl.DataFrame) -> None:
    """The bars of ``path`` into table ``bars`` and the expected minutes into table ``expected``."""
    con.execute(DUCKDB_LOAD.replace("$path", "'" + path.replace("'", "''") + "'"))
    con.register("expected_frame", expected.to_arrow())
    con.execute("CREATE TABLE expected AS SELECT ts, idx::INTEGER AS idx FROM expected_frame")


def duckdb_counts(con, spike_z: float, stale_min: int) -> dict:
    params = {"spike_z": spike_z, "stale_min": stale_min, "ln10": LN_10, "mad": MAD_TO_SIGMA,
              "meanad": MEANAD_TO_SIGMA}
    cur = con.execute(DUCKDB_GATES, params)
    row = cur.fetchone()
    return {d[0]: int(v) for d, v in zip(cur.description, row)}


# --- polars ----------------------------------------------------------------------------------------------
def polars_counts(bars: pl.LazyFrame, expected: pl.DataFrame, spike_z: float, stale_min: int) -> dict:
    """The 21 counts as one lazy query (one ``collect_all``): ``bars`` in delivery order, ``expected`` the
    session's minutes (ts, idx)."""
    o, h, lo, c, v, ts = (pl.col(x) for x in ("open", "high", "low", "close", "volume", "ts"))
    n_minutes = expected.height
    bars = bars.with_columns(pl.col("symbol").cast(pl.Categorical)).with_row_index("seq")
    ok = pl.all_horizontal([x.is_finite() & (x > 0) for x in (o, h, lo, c)])
    flags = {
        "low_above_body": ok & (lo > pl.min_horizontal(o, c)),
        "high_below_body": ok & (h < pl.max_horizontal(o, c)),
        "low_above_high": ok & (lo > h),
        "non_positive_or_non_finite": ~ok,
    }
    rowchecks = bars.select(
        pl.len().alias("rows"),
        *[e.sum().alias(k) for k, e in flags.items()],
        pl.any_horizontal(list(flags.values())).sum().alias("ohlc_rows_violating"),
        (v < 0).sum().alias("negative"),
        (~v.is_finite()).sum().alias("non_finite"),
        pl.col("symbol").n_unique().alias("symbols"),
    )
    # per symbol in delivery order: a stable sort by symbol code keeps delivery order within a symbol
    code = pl.col("symbol").to_physical()
    in_order = (
        bars.select(code.alias("code"), "ts")
        .sort("code", maintain_order=True)
        .select(
            ((ts <= ts.shift(1)) & (pl.col("code") == pl.col("code").shift(1)))
            .sum()
            .alias("rows_out_of_order")
        )
    )
    located = bars.join(expected.lazy(), on="ts", how="left", maintain_order="left").with_columns(
        frozen=(o == h) & (h == lo) & (lo == c) & c.is_finite()
    )
    off_grid = (
        located.filter(pl.col("idx").is_null())
        .group_by("symbol", "ts")
        .len()
        .select(
            (pl.col("len") - 1).sum().alias("off_duplicate_rows"),
            (pl.col("len") > 1).sum().alias("off_duplicated_keys"),
            pl.col("len").sum().alias("rows_misaligned"),
        )
    )
    # one stable sort by the cell (symbol code x minutes + minute): delivery order decides within a cell
    cell = code.cast(pl.Int64) * n_minutes + pl.col("idx")
    cells = (
        located.filter(pl.col("idx").is_not_null())
        .select(cell.alias("cell"), "close", "frozen")
        .sort("cell", maintain_order=True)
        .with_columns(
            same_as_next=(pl.col("cell") == pl.col("cell").shift(-1)).fill_null(False),
            same_as_prev=(pl.col("cell") == pl.col("cell").shift(1)).fill_null(False),
        )
        .cache()
    )
    on_grid = cells.select(
        pl.col("same_as_next").sum().alias("duplicate_rows"),
        (pl.col("same_as_next") & ~pl.col("same_as_prev")).sum().alias("duplicated_keys"),
        (~pl.col("same_as_next")).sum().alias("present"),
    )
    survivors = (
        cells.filter(~pl.col("same_as_next"))
        .select(
            (pl.col("cell") // n_minutes).alias("symbol"),
            (pl.col("cell") % n_minutes).alias("idx"),
            "close",
            "frozen",
        )
        .with_columns(
            first_of_symbol=(pl.col("symbol") != pl.col("symbol").shift(1)).fill_null(True),
            last_of_symbol=(pl.col("symbol") != pl.col("symbol").shift(-1)).fill_null(True),
        )
        .cache()
    )
    # gap windows: market-wide minutes, and runs of the other missing minutes between present ones
    delivered = located.select(pl.col("idx").drop_nulls().unique())
    grid = (
        expected.lazy()
        .select("idx")
        .join(delivered.with_columns(pl.lit(False).alias("market_wide")), on="idx", how="left")
        .sort("idx")
        .with_columns(pl.col("market_wide").fill_null(True))
        .with_columns(
            run_start=~pl.col("market_wide") & pl.col("market_wide").shift(1, fill_value=True),
            market_wide_start=pl.col("market_wide") & ~pl.col("market_wide").shift(1, fill_value=False),
        )
        .with_columns(runs_to=pl.col("run_start").cum_sum())
    )
    prev_idx = pl.when(~pl.col("first_of_symbol")).then(pl.col("idx").shift(1))
    intervals = pl.concat(
        [
            survivors.select(lo=(prev_idx + 1).fill_null(0), hi=pl.col("idx") - 1),
            survivors.filter(pl.col("last_of_symbol")).select(
                lo=pl.col("idx") + 1, hi=pl.lit(n_minutes - 1, dtype=pl.Int64)
            ),
        ]
    ).filter(pl.col("hi") >= pl.col("lo"))
    ends = grid.select("idx", "runs_to", "market_wide")
    residual = (
        intervals.join(ends.rename({"idx": "lo", "runs_to": "lo_runs", "market_wide": "lo_mw"}), on="lo")
        .join(ends.rename({"idx": "hi", "runs_to": "hi_runs"}).drop("market_wide"), on="hi")
        .select(
            (pl.col("hi_runs") - pl.col("lo_runs") + (~pl.col("lo_mw")).cast(pl.Int64))
            .sum()
            .alias("residual")
        )
    )
    whole = grid.select(
        pl.col("market_wide_start").sum().alias("market_wide_windows"),
        pl.col("runs_to").last().alias("runs_all"),  # a symbol with no bar on the grid misses all these runs
    )
    symbols_on_grid = survivors.select(pl.col("last_of_symbol").sum().alias("symbols_on_grid"))
    # returns: previous bar with a finite positive close of the same symbol
    valid = pl.col("close").is_finite() & (pl.col("close") > 0)
    returns = (
        survivors.filter(valid)
        .with_columns(logc=pl.col("close").log())
        .with_columns(r=pl.col("logc") - pl.col("logc").shift(1))
        .filter(pl.col("symbol") == pl.col("symbol").shift(1))
        .select("symbol", "r")
        .with_columns(d=(pl.col("r") - pl.col("r").median().over("symbol")).abs())
        .with_columns(
            mad=MAD_TO_SIGMA * pl.col("d").median().over("symbol"),
            meanad=MEANAD_TO_SIGMA * pl.col("d").mean().over("symbol"),
        )
        .with_columns(
            s=pl.when(pl.col("mad") > 0).then("mad").when(pl.col("meanad") > 0).then("meanad")
        )
        .select(
            pl.len().alias("returns"),
            (pl.col("s").is_not_null() & (pl.col("d") / pl.col("s") > spike_z)).sum().alias("spikes"),
            (pl.col("r").abs() > LN_10).sum().alias("scale_breaks"),
        )
    )
    # frozen runs: links between adjacent minutes of one symbol, then islands among the few links
    links = (
        survivors.filter(
            pl.col("frozen")
            & pl.col("frozen").shift(1)
            & ~pl.col("first_of_symbol")
            & (pl.col("idx").shift(1) == pl.col("idx") - 1)
            & (pl.col("close").shift(1) == pl.col("close"))
        )
        .select("symbol", "idx")
        .with_columns(
            island=(
                (pl.col("symbol") != pl.col("symbol").shift(1))
                | (pl.col("idx").shift(1) != pl.col("idx") - 1)
            )
            .fill_null(True)
            .cum_sum()
        )
        .group_by("island")
        .agg(bars=pl.len() + 1)
        .filter(pl.col("bars") >= stale_min)
        .select(pl.len().alias("stale_runs"), pl.col("bars").sum().alias("stale_bars"))
    )
    parts = [rowchecks, in_order, off_grid, on_grid, symbols_on_grid, residual, whole, returns, links]
    r = {k: v for frame in pl.collect_all(parts) for k, v in frame.row(0, named=True).items()}
    symbols_off_grid = r["symbols"] - r["symbols_on_grid"]
    expected_cells = r["symbols"] * n_minutes
    missing = expected_cells - r["present"]
    return {
        **{k: r[k] for k in ("rows", *flags, "ohlc_rows_violating", "negative", "non_finite")},
        "duplicate_rows": r["duplicate_rows"] + r["off_duplicate_rows"],
        "duplicated_keys": r["duplicated_keys"] + r["off_duplicated_keys"],
        "rows_out_of_order": r["rows_out_of_order"],
        "rows_misaligned": r["rows_misaligned"] or 0,
        "expected": expected_cells,
        "present": r["present"],
        "missing": missing,
        "gap_windows": 0 if missing == 0 else (
            r["market_wide_windows"] + (r["residual"] or 0) + symbols_off_grid * r["runs_all"]
        ),
        **{k: r[k] or 0 for k in ("returns", "spikes", "scale_breaks", "stale_runs", "stale_bars")},
    }
