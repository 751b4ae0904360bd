"""Benchmark: the polars gate suite against the same checks as ONE plain DuckDB SQL query.

    .venv/bin/python benchmarks/bench_gates.py [--symbols 1000] [--sessions 7]

10,080,000 bars by default: 1,000 symbols x 7 CRYPTO (24/7) sessions x 1,440 minutes, delivered minute by
minute, with seeded faults of every kind (gaps per symbol and market-wide, duplicates, out-of-order rows,
OHLC violations, negative/NaN volume, x100 price errors, frozen runs, off-minute stamps). The parent writes
the data once to Parquet; each side then runs in its own subprocess (so ``ru_maxrss`` is that side's own
high-water mark, reading the same file), times only the checks, and prints its counts. The parent fails
loudly when the two sides disagree on any count.
"""

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

MARKET, CALENDAR = "CRYPTO", "24/7"
FIRST_SESSION = dt.date(2026, 3, 1)
STALE_MIN = 10
SPIKE_Z = 100.0

COMPARED = (
    "rows",
    "ohlc_rows_violating",
    "low_above_body",
    "high_below_body",
    "low_above_high",
    "non_positive_or_non_finite",
    "negative",
    "non_finite",
    "duplicate_rows",
    "duplicated_keys",
    "rows_out_of_order",
    "rows_misaligned",
    "expected",
    "present",
    "missing",
    "gap_windows",
    "returns",
    "spikes",
    "scale_breaks",
    "stale_runs",
    "stale_bars",
)


def sessions(n: int) -> list[dt.date]:
    return [FIRST_SESSION + dt.timedelta(days=i) for i in range(n)]


def expected_minutes(n_sessions: int) -> np.ndarray:
    from tradepulse_assets.markets import calendar_for

    cal = calendar_for(MARKET, CALENDAR)
    return np.concatenate([cal.minutes(s) for s in sessions(n_sessions)]).astype("datetime64[us]")


def generate(path: Path, n_sym: int, n_sessions: int, seed: int = 20260301) -> int:
    """Write the synthetic delivery to ``path``; returns its row count."""
    rng = np.random.default_rng(seed)
    minutes = expected_minutes(n_sessions)
    n_min = minutes.size
    r = 1e-3 * rng.standard_normal((n_min, n_sym))
    start = rng.uniform(20, 500, n_sym)
    close = start * np.exp(np.cumsum(r, axis=0))
    del r
    open_ = np.empty_like(close)
    open_[0], open_[1:] = start, close[:-1]
    high = np.maximum(open_, close) * np.exp(1e-3 * np.abs(rng.standard_normal((n_min, n_sym))))
    low = np.minimum(open_, close) * np.exp(-1e-3 * np.abs(rng.standard_normal((n_min, n_sym))))
    volume = rng.integers(1, 10_000, (n_min, n_sym)).astype(np.float64)
    ts = np.broadcast_to(minutes.view("int64")[:, None], (n_min, n_sym)).copy()

    # faults on distinct cells away from the edges (cell = minute * n_sym + symbol)
    cells = rng.choice(np.arange(20 * n_sym, (n_min - 40) * n_sym), size=137, replace=False)
    ohlc, neg, nan, scale, off, swap, dup, stale = np.split(cells, [30, 40, 45, 55, 62, 82, 132])
    fm = lambda c: (c // n_sym, c % n_sym)
    m, s = fm(ohlc)
    low[m, s] = high[m, s] * 1.01
    volume[fm(neg)] = -1.0
    volume[fm(nan)] = np.nan
    m, s = fm(scale)
    for arr in (open_, high, low, close):
        arr[m, s] *= 100.0
    ts[fm(off)] += 30_000_000
    m, s = fm(swap)
    ts[m, s], ts[m + 1, s] = ts[m + 1, s].copy(), ts[m, s].copy()
    for c in stale:
        m, s = fm(c)
        for arr in (open_, high, low, close):
            arr[m : m + 15, s] = close[m, s]
    keep = np.ones((n_min, n_sym), dtype=bool)
    keep[100:160, 7 % n_sym] = False  # one symbol, one hour
    keep[5000:5005, :] = False  # everyone, five minutes (market-wide)
    order = np.flatnonzero(keep.ravel())
    order = np.sort(
        np.concatenate([order, dup[keep.ravel()[dup]]]), kind="stable"
    )  # a duplicate follows its row
    symbols = np.array([f"S{i:04d}" for i in range(n_sym)], dtype=object)
    frame = pl.DataFrame(
        {
            "symbol": pl.Series(symbols.tolist()).gather(order % n_sym),
            "ts": pl.Series(ts.ravel()[order]).cast(pl.Datetime("us", "UTC")),
            "open": open_.ravel()[order],
            "high": high.ravel()[order],
            "low": low.ravel()[order],
            "close": close.ravel()[order],
            "volume": volume.ravel()[order],
        }
    )
    frame.write_parquet(path, compression="lz4")
    return frame.height


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def peak_after_load_mb() -> float:
    """High-water mark right after reading the Parquet file: the part of the peak that is the data itself."""
    return peak_rss_mb()


# --- polars side -----------------------------------------------------------------------------------
def run_polars(path: Path, n_sessions: int) -> dict:
    from tradepulse_assets.markets import calendar_for
    from tradepulse_assets.quality import GateConfig, run_gate_suite

    frame = pl.read_parquet(path)
    loaded = peak_after_load_mb()
    cal = calendar_for(MARKET, CALENDAR)
    config = GateConfig(spike_z_threshold=SPIKE_Z, stale_min_minutes=STALE_MIN)
    t0 = time.perf_counter()
    results = {
        r.gate: r
        for r in run_gate_suite(frame, cal, sessions(n_sessions), vendor_total=frame.height, config=config)
    }
    seconds = time.perf_counter() - t0
    c = {name: r.counts for name, r in results.items()}
    counts = {
        "rows": frame.height,
        "ohlc_rows_violating": c["ohlc_consistency"]["rows_violating"],
        **{
            k: c["ohlc_consistency"][k]
            for k in ("low_above_body", "high_below_body", "low_above_high", "non_positive_or_non_finite")
        },
        "negative": c["negative_volume"]["negative"],
        "non_finite": c["negative_volume"]["non_finite"],
        "duplicate_rows": c["duplicate_bars"]["duplicate_rows"],
        "duplicated_keys": c["duplicate_bars"]["duplicated_keys"],
        "rows_out_of_order": c["monotonic_timestamps"]["rows_out_of_order"],
        "rows_misaligned": c["calendar_alignment"]["rows_misaligned"],
        **{k: c["completeness"].get(k, 0) for k in ("expected", "present", "missing", "gap_windows")},
        "returns": c["price_spikes"]["returns"],
        "spikes": c["price_spikes"]["spikes"],
        "scale_breaks": c["price_scale"]["scale_breaks"],
        "stale_runs": c["stale_prices"]["stale_runs"],
        "stale_bars": c["stale_prices"]["stale_bars"],
    }
    return {
        "seconds": seconds,
        "counts": counts,
        "schema_passed": results["schema"].passed,
        "load_mb": loaded,
    }


# --- DuckDB side -----------------------------------------------------------------------------------
GATES_SQL = """
WITH
b AS (SELECT * FROM bars),
syms AS (SELECT DISTINCT symbol FROM b),
j AS (SELECT b.*, e.idx FROM b LEFT JOIN expected e USING (ts)),
fp AS (SELECT *, isfinite(open) AND open > 0 AND isfinite(high) AND high > 0 AND isfinite(low) AND low > 0
                 AND isfinite(close) AND close > 0 AS ok FROM b),
ohlc AS (
  SELECT count(*) FILTER (WHERE ok AND low > least(open, close)) AS low_above_body,
         count(*) FILTER (WHERE ok AND high < greatest(open, close)) AS high_below_body,
         count(*) FILTER (WHERE ok AND low > high) AS low_above_high,
         count(*) FILTER (WHERE NOT ok) AS non_positive_or_non_finite,
         count(*) FILTER (WHERE NOT ok OR low > least(open, close) OR high < greatest(open, close) OR low > high)
           AS ohlc_rows_violating,
         count(*) FILTER (WHERE volume < 0) AS negative,
         count(*) FILTER (WHERE NOT isfinite(volume)) AS non_finite,
         count(*) FILTER (WHERE symbol IS NULL OR ts IS NULL OR open IS NULL OR high IS NULL OR low IS NULL
                          OR close IS NULL OR volume IS NULL) AS null_rows,
         count(*) AS rows
  FROM fp),
dup AS (SELECT coalesce(sum(c - 1), 0) AS duplicate_rows, count(*) AS duplicated_keys
        FROM (SELECT symbol, ts, count(*) AS c FROM b GROUP BY symbol, ts HAVING count(*) > 1)),
mono AS (SELECT count(*) FILTER (WHERE ts <= prev_ts) AS rows_out_of_order
         FROM (SELECT ts, lag(ts) OVER (PARTITION BY symbol ORDER BY seq) AS prev_ts FROM b)),
align AS (SELECT count(*) FILTER (WHERE idx IS NULL) AS rows_misaligned FROM j),
d AS (SELECT symbol, idx, arg_max(close, seq) AS close,
             arg_max(open = high AND high = low AND low = close AND isfinite(close), seq) AS frozen
      FROM j WHERE idx IS NOT NULL GROUP BY symbol, idx),
comp AS (SELECT (SELECT count(*) FROM syms) * (SELECT count(*) FROM expected) AS expected,
                count(*) AS present FROM d),
w1 AS (SELECT symbol, idx, close, frozen,
              CASE WHEN close > 0 AND isfinite(close) THEN ln(close) END AS lc,
              lag(idx) OVER w AS pidx, lag(close) OVER w AS pclose, lag(frozen) OVER w AS pfrozen,
              last_value(CASE WHEN close > 0 AND isfinite(close) THEN ln(close) END IGNORE NULLS)
                OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS plc,
              max(idx) OVER (PARTITION BY symbol) AS last_idx, min(idx) OVER (PARTITION BY symbol) AS first_idx
       FROM d WINDOW w AS (PARTITION BY symbol ORDER BY idx)),
gaps AS (SELECT symbol, coalesce(pidx, -1) + 1 AS a, idx - 1 AS b FROM w1
         UNION ALL
         SELECT DISTINCT symbol, last_idx + 1, (SELECT max(idx) FROM expected) FROM w1),
cells AS (SELECT g.symbol, e.idx FROM gaps g JOIN expected e ON e.idx BETWEEN g.a AND g.b WHERE g.b >= g.a),
mw AS (SELECT idx FROM expected WHERE idx NOT IN (SELECT DISTINCT idx FROM d)),
resid AS (SELECT symbol, idx FROM cells WHERE idx NOT IN (SELECT idx FROM mw)),
windows AS (
  SELECT (SELECT count(DISTINCT k) FROM (SELECT idx - row_number() OVER (ORDER BY idx) AS k FROM mw))
       + (SELECT count(*) FROM (SELECT DISTINCT symbol, idx - row_number() OVER (PARTITION BY symbol ORDER BY idx)
                                FROM resid)) AS gap_windows),
rets AS (SELECT symbol, lc - plc AS r FROM w1 WHERE lc IS NOT NULL AND plc IS NOT NULL),
med AS (SELECT symbol, median(r) AS med FROM rets GROUP BY symbol),
dev AS (SELECT rets.symbol, r, abs(r - med) AS dev FROM rets JOIN med USING (symbol)),
scale AS (SELECT symbol, CASE WHEN median(dev) > 0 THEN 1.4826 * median(dev)
                               WHEN avg(dev) > 0 THEN 1.253314 * avg(dev) END AS s
          FROM dev GROUP BY symbol),
spk AS (SELECT count(*) AS returns,
               count(*) FILTER (WHERE s IS NOT NULL AND dev / s > $spike_z) AS spikes,
               count(*) FILTER (WHERE abs(r) > ln(10)) AS scale_breaks
        FROM dev JOIN scale USING (symbol)),
links AS (SELECT symbol, idx, coalesce(frozen AND pfrozen AND pidx = idx - 1 AND close = pclose, false) AS link
          FROM w1),
runs AS (SELECT symbol, grp, count(*) + 1 AS len
         FROM (SELECT symbol, link, sum(CASE WHEN link THEN 0 ELSE 1 END)
                      OVER (PARTITION BY symbol ORDER BY idx) AS grp FROM links)
         WHERE link GROUP BY symbol, grp),
stale AS (SELECT count(*) AS stale_runs, coalesce(sum(len), 0) AS stale_bars FROM runs WHERE len >= $stale_min)
SELECT ohlc.*, dup.*, mono.*, align.*, comp.expected, comp.present, comp.expected - comp.present AS missing,
       windows.gap_windows, spk.*, stale.*
FROM ohlc, dup, mono, align, comp, windows, spk, stale
"""


def run_duckdb(path: Path, n_sessions: int) -> dict:
    import duckdb

    frame = pl.read_parquet(path)
    loaded = peak_after_load_mb()
    minutes = expected_minutes(n_sessions)
    con = duckdb.connect()
    t0 = time.perf_counter()
    bars = frame.with_row_index("seq").to_arrow()  # delivery order, made explicit for SQL
    expected = pl.DataFrame(
        {"ts": pl.Series(minutes).cast(pl.Datetime("us", "UTC")), "idx": np.arange(minutes.size)}
    ).to_arrow()
    con.register("bars", bars)
    con.register("expected", expected)
    cur = con.execute(GATES_SQL, {"spike_z": SPIKE_Z, "stale_min": STALE_MIN})
    row = cur.fetchone()
    names = [d[0] for d in cur.description]
    seconds = time.perf_counter() - t0
    counts = {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(names, row)}
    return {
        "seconds": seconds,
        "counts": {k: int(counts[k]) for k in COMPARED},
        "null_rows": int(counts["null_rows"]),
        "load_mb": loaded,
    }


def child(side: str, path: Path, n_sessions: int) -> None:
    result = (run_polars if side == "polars" else run_duckdb)(path, n_sessions)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=7)
    parser.add_argument("--child", choices=["polars", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.sessions)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_gates_") as tmp:
        path = Path(tmp) / "bars.parquet"
        t0 = time.perf_counter()
        rows = generate(path, args.symbols, args.sessions)
        print(
            f"generated {rows:,} bars ({args.symbols} symbols x {args.sessions} x 1440 minutes, seeded faults) "
            f"in {time.perf_counter() - t0:.1f} s; file {path.stat().st_size / 1e6:.0f} MB"
        )
        out = {}
        for side in ("polars", "duckdb"):
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    side,
                    "--data",
                    str(path),
                    "--sessions",
                    str(args.sessions),
                ],
                check=False,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"{side} side failed (exit {proc.returncode})")
            out[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'side':<8} {'seconds':>8} {'rows/s':>14} {'peak RSS':>10} {'of which loading':>17}")
    for side, res in out.items():
        print(
            f"{side:<8} {res['seconds']:8.2f} {rows / res['seconds']:14,.0f} {res['peak_rss_mb']:7.0f} MB "
            f"{res['load_mb']:14.0f} MB"
        )
    ratio = out["duckdb"]["seconds"] / out["polars"]["seconds"]
    print(f"polars suite is {ratio:.2f}x the speed of the DuckDB query")
    mismatches = {
        k: (out["polars"]["counts"][k], out["duckdb"]["counts"][k])
        for k in COMPARED
        if out["polars"]["counts"][k] != out["duckdb"]["counts"][k]
    }
    print("counts: " + ", ".join(f"{k}={out['polars']['counts'][k]}" for k in COMPARED))
    if mismatches:
        print(f"MISMATCH between polars and DuckDB (polars, duckdb): {mismatches}", file=sys.stderr)
        return 1
    print("polars and DuckDB agree on every count")
    ok_speed, ok_mem = ratio >= 1.0, out["polars"]["peak_rss_mb"] < 2048
    print(
        f"target: at least as fast as DuckDB: {'met' if ok_speed else 'NOT met'}; "
        f"peak memory under 2 GB: {'met' if ok_mem else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
