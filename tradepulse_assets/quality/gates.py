"""The quality gates: pure functions from one partition's bars to a ``GateResult``.

Each gate is one small function over a ``PreparedBars`` (so the suite shares the expensive work: codes, minute
indexes, the session grid) and is declared once, with its columns and blocking default, in
``quality.registry``; the suite, the asset checks, the standalone ``check_*`` functions and the table in
docs/quality-gates.md are all built from that registry. Gates never drop or fix data: they flag it with counts
and the first offending rows. A gate judges pass/fail only; whether a failure blocks promotion is policy, so
the registry stamps ``blocking`` on the result (gates here leave it False).
"""

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl

from tradepulse_assets.markets import bars as bar_schema
from tradepulse_assets.quality.session_grid import (
    MINUTE_US,
    GateInputError,
    PreparedBars,
    SessionSpec,
    nan_mean_rows,
    nan_median_rows,
    row_chunks,
    runs_of_cells,
    runs_of_true,
    ts_from_us,
)
from tradepulse_assets.quality.results import (
    CALENDAR_ALIGNMENT,
    COMPLETENESS,
    DEFAULT_CONFIG,
    DUPLICATE_BARS,
    FRESHNESS,
    MANIFEST_RECONCILIATION,
    MONOTONIC_TIMESTAMPS,
    NEGATIVE_VOLUME,
    OHLC_CONSISTENCY,
    PRICE_SCALE,
    PRICE_SPIKES,
    SCHEMA,
    STALE_PRICES,
    TRADE_COUNT,
    UNIVERSE,
    VOLUME_TRADES,
    VWAP_RANGE,
    MissingBars,
    GateConfig,
    GateResult,
)

#: A completeness result keeps at most this many gap windows (beyond it, re-fetch the whole session).
MAX_GAP_WINDOWS = 10_000
#: MAD -> standard deviation of a normal; MeanAD -> standard deviation (Iglewicz & Hoaglin fallback for MAD=0).
MAD_TO_SIGMA = 1.4826
MEANAD_TO_SIGMA = 1.253314
#: Vendor conditions meaning "published, but not whole" (the vocabulary is feeds.manifest.CONDITIONS): the
#: manifest reconciliation gate fails on them.
DEGRADED_CONDITIONS = ("degraded",)

REQUIRED = {
    OHLC_CONSISTENCY: ("open", "high", "low", "close"),
    DUPLICATE_BARS: ("symbol", "ts"),
    MONOTONIC_TIMESTAMPS: ("symbol", "ts"),
    COMPLETENESS: ("symbol", "ts"),
    CALENDAR_ALIGNMENT: ("symbol", "ts"),
    PRICE_SPIKES: ("symbol", "ts", "close"),
    PRICE_SCALE: ("symbol", "ts", "close"),
    STALE_PRICES: ("symbol", "ts", "open", "high", "low", "close"),
    NEGATIVE_VOLUME: ("volume",),
    VWAP_RANGE: ("open", "high", "low", "close", "vwap"),
    TRADE_COUNT: ("trade_count",),
    VOLUME_TRADES: ("volume", "trade_count"),
    UNIVERSE: ("symbol",),
}
#: What ohlc_consistency counts, in the order it reports them.
OHLC_FLAGS = ("low_above_body", "high_below_body", "low_above_high", "non_positive_or_non_finite")
#: Relative slack of the vwap range check: vendors round vwap and prices separately (1e-9 of the high).
VWAP_REL_TOLERANCE = 1e-9


def not_evaluated(gate: str, reason: str) -> GateResult:
    """A gate that could not look at the data because the frame failed the schema where it matters."""
    return GateResult(
        gate=gate,
        passed=False,
        blocking=False,
        summary=f"not evaluated: schema failed ({reason})",
        counts={"evaluated": 0},
        evaluated=False,
    )


def _skipped(gate: str, reason: str) -> GateResult:
    """A gate whose optional inputs were not given: nothing to judge, so it does not fail."""
    return GateResult(
        gate, True, False, f"skipped: {reason}", {"evaluated": 0}, evaluated=False
    )


def _row_evidence(
    p: PreparedBars, rows: np.ndarray, columns: Sequence[str], **extra: np.ndarray
) -> list[dict]:
    """The given rows (delivery positions) as JSON-able dicts, with a ``row`` field and extra per-row values."""
    if rows.size == 0:
        return []
    present = [c for c in columns if c in p.df.columns]
    frame = p.df[rows.tolist()].select(present)
    out = []
    for i, record in enumerate(frame.iter_rows(named=True)):
        item = {"row": int(rows[i])}
        for key, value in record.items():
            item[key] = value.isoformat() if isinstance(value, dt.datetime) else value
        for key, values in extra.items():
            value = values[i]
            item[key] = value.item() if hasattr(value, "item") else value
        out.append(item)
    return out


def _keyed_first(p: PreparedBars, rows: np.ndarray) -> str:
    """``_first_ts`` when symbol and ts are usable (a row gate still runs on a frame with a broken key)."""
    return _first_ts(p, rows) if "ts" not in p.problems and "symbol" not in p.problems else ""


def _first_ts(p: PreparedBars, rows: np.ndarray) -> str:
    if rows.size == 0:
        return ""
    row = int(rows[0])
    return f"; first {p.df['symbol'][row]} {ts_from_us(p.ts_us[row]).isoformat()} (row {row})"


# --- schema ---------------------------------------------------------------------------------------
def schema(p: PreparedBars, config: GateConfig) -> GateResult:
    import pandera.errors as pa_errors  # on first use, like the model: pandera imports pandas (markets.bars)

    try:
        bar_schema.BarSchema.validate(p.df, lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if not isinstance(cases, pl.DataFrame):
            cases = pl.from_pandas(cases)
        cases = cases.with_columns(pl.col(c).cast(pl.String) for c in cases.columns)
        by_check = cases.group_by(["schema_context", "column", "check"], maintain_order=True).agg(
            pl.len(), pl.col("failure_case").head(5)
        )
        parts = [
            f"{r['check']}: {', '.join(str(v) for v in r['failure_case'])}"
            if r["schema_context"] == "DataFrameSchema"
            else f"{r['column']}: {r['check']} ({r['len']} rows)"
            for r in by_check.iter_rows(named=True)
        ]
        return GateResult(
            SCHEMA,
            False,
            False,
            f"schema failed for {p.n_rows} rows: "
            + "; ".join(parts[:6])
            + (" ..." if len(parts) > 6 else ""),
            {"failure_cases": cases.height, "checks_failed": by_check.height, "rows": p.n_rows},
            cases.head(config.max_evidence).to_dicts(),
        )
    except pa_errors.SchemaError as exc:  # raised by pandera for errors it cannot collect lazily
        return GateResult(
            SCHEMA, False, False, f"schema failed: {exc}", {"failure_cases": 1}
        )
    return GateResult(
        SCHEMA, True, False, f"{p.n_rows} rows match BarSchema", {"rows": p.n_rows}
    )




# --- manifest reconciliation --------------------------------------------------------------------
def manifest_reconciliation(
    n_rows: int,
    vendor_total: int | None = None,
    checksums_ok: bool | None = None,
    *,
    vendor_file_counts: Mapping[str, int] | None = None,
    landed_file_counts: Mapping[str, int] | None = None,
    vendor_condition: str | None = None,
    config: GateConfig = DEFAULT_CONFIG,
) -> GateResult:
    """Landed row count against the vendor's manifest total (and per file when both sides are given), the
    checksum verdict computed by landing, and the vendor's own condition for the session.

    A session the vendor flags ``degraded`` (our manifest's condition, Databento's ``condition.json``) fails:
    the vendor itself says its totals are not the whole truth, so its bars must not reach production however
    well they reconcile. The evidence names the condition (``{"condition": "degraded"}``), which is how the
    incident engine tells a vendor-declared fault from a count mismatch."""
    gate = MANIFEST_RECONCILIATION
    facts = (vendor_total, checksums_ok, vendor_file_counts, vendor_condition)
    if all(fact is None for fact in facts):
        return _skipped(gate, "no vendor total, file counts, checksum verdict or condition given")
    problems, evidence = [], []
    counts: dict[str, int | float] = {"rows": int(n_rows)}
    if vendor_condition in DEGRADED_CONDITIONS:
        counts["degraded"] = 1
        evidence.append({"condition": vendor_condition})
        problems.append(f"the vendor flags the session {vendor_condition!r} (incomplete or suspect data)")
    if vendor_total is not None:
        counts["vendor_total"] = int(vendor_total)
        counts["difference"] = int(n_rows) - int(vendor_total)
        if n_rows != vendor_total:
            problems.append(f"{n_rows} rows landed, vendor manifest says {vendor_total}")
    if vendor_file_counts is not None:
        landed, mismatched = dict(landed_file_counts or {}), []
        for name in sorted(set(vendor_file_counts) | set(landed)):
            want, got = vendor_file_counts.get(name), landed.get(name)
            if want != got:
                mismatched.append({"file": name, "vendor_rows": want, "landed_rows": got})
        counts["files"] = len(vendor_file_counts)
        counts["files_mismatched"] = len(mismatched)
        evidence += mismatched
        if mismatched:
            problems.append(
                f"{len(mismatched)} file(s) disagree with the manifest, first {mismatched[0]['file']}"
            )
    if checksums_ok is not None:
        counts["checksums_ok"] = int(bool(checksums_ok))
        if not checksums_ok:
            problems.append("checksum mismatch against the manifest (quarantine the batch)")
    passed = not problems
    summary = "; ".join(problems) if problems else f"{n_rows} rows reconcile with the vendor manifest"
    return GateResult(gate, passed, False, summary, counts, evidence[: config.max_evidence])


# --- row-wise gates ----------------------------------------------------------------------------
def _flag_counts(
    p: PreparedBars, flags: Callable[[slice], Mapping[str, np.ndarray]] | Mapping[str, pl.Expr], config: GateConfig
) -> tuple[dict, np.ndarray, list[list[str]]]:
    """Rows carrying each flag and rows carrying any, then the first offending rows (delivery positions) with
    the names of their flags.

    ``flags`` gives the boolean flags of a slice of rows (NumPy: evaluated a chunk of rows at a time, so the
    temporaries stay in cache), or is polars expressions (evaluated in one pass; a null flag is not raised)."""
    if isinstance(flags, Mapping):
        evaluated = p.df.select(e.fill_null(False).alias(name) for name, e in flags.items())
        arrays = {name: evaluated[name].to_numpy() for name in flags}
        flags = lambda rows: {name: values[rows] for name, values in arrays.items()}  # noqa: E731
    counts: dict[str, int] = {}
    rows, violations = [], []
    for chunk in list(row_chunks((p.n_rows, 1))) or [slice(0, 0)]:
        chunk_flags = flags(chunk)
        any_flag = np.zeros(chunk.stop - chunk.start, dtype=bool)
        for name, flag in chunk_flags.items():
            any_flag |= flag
            counts[name] = counts.get(name, 0) + int(np.count_nonzero(flag))
        counts["rows_violating"] = counts.get("rows_violating", 0) + int(np.count_nonzero(any_flag))
        for row in np.flatnonzero(any_flag)[: config.max_evidence - len(rows)]:
            rows.append(chunk.start + int(row))
            violations.append([name for name, flag in chunk_flags.items() if flag[row]])
    return counts, np.array(rows, dtype=np.int64), violations


def ohlc_consistency(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = OHLC_CONSISTENCY
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    def flags(rows: slice) -> dict[str, np.ndarray]:
        o, h, lo, c = (p.column_rows(x, rows) for x in ("open", "high", "low", "close"))
        finite_positive = np.ones(o.size, dtype=bool)
        for x in (o, h, lo, c):
            finite_positive &= x > 0
            finite_positive &= x < np.inf  # NaN fails both comparisons
        hits = (lo > np.minimum(o, c), h < np.maximum(o, c), lo > h)  # judged on finite positive prices
        return dict(zip(OHLC_FLAGS, [hit & finite_positive for hit in hits] + [~finite_positive]))

    counts, rows, violations = _flag_counts(p, flags, config)
    counts["rows"] = p.n_rows
    n_bad = counts["rows_violating"]
    if n_bad == 0:
        return GateResult(
            gate, True, False, f"all {p.n_rows} bars have consistent OHLC", counts
        )
    evidence = _row_evidence(p, rows, ("symbol", "ts", "open", "high", "low", "close"))
    for item, names in zip(evidence, violations):
        item["violations"] = names
    detail = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in OHLC_FLAGS if counts[k])
    keyed = "ts" not in p.problems and "symbol" not in p.problems
    summary = f"{n_bad} of {p.n_rows} bars violate OHLC ({detail})" + (_first_ts(p, rows) if keyed else "")
    return GateResult(gate, False, False, summary, counts, evidence)




def negative_volume(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = NEGATIVE_VOLUME
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    def flags(rows: slice) -> dict[str, np.ndarray]:
        volume = p.column_rows("volume", rows)
        return {"negative": volume < 0, "non_finite": ~np.isfinite(volume)}

    counts, rows, _ = _flag_counts(p, flags, config)
    counts["rows"] = p.n_rows
    n_bad = counts["rows_violating"]
    if n_bad == 0:
        return GateResult(
            gate, True, False, f"all {p.n_rows} bars have a finite volume >= 0", counts
        )
    evidence = _row_evidence(p, rows, ("symbol", "ts", "volume"))
    summary = f"{n_bad} of {p.n_rows} bars have negative ({counts['negative']}) or NaN/inf ({counts['non_finite']}) volume"
    return GateResult(gate, False, False, summary, counts, evidence)




def _absent(p: PreparedBars, gate: str, column: str) -> GateResult | None:
    """An optional column the vendor did not ship: nothing to judge (null by contract), so the gate passes."""
    if column in p.df.columns:
        return None
    return _skipped(gate, f"no {column} column (optional in the bar schema)")


def vwap_range(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = VWAP_RANGE
    if (absent := _absent(p, gate, "vwap")) is not None:
        return absent
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    w = pl.col("vwap")
    # The bar's envelope: [low, high], widened to open/close where they contradict it (ohlc_consistency owns
    # that fault; one fault, one gate).
    lo = pl.min_horizontal("low", "open", "close")
    h = pl.max_horizontal("high", "open", "close")
    given = w.is_not_null()
    slack = VWAP_REL_TOLERANCE * h.abs()  # vendors round the vwap and the prices separately
    flags = {
        "non_finite": given & ~w.is_finite(),
        "below_low": given & w.is_finite() & (w < lo - slack),
        "above_high": given & w.is_finite() & (w > h + slack),
    }
    counts, rows, violations = _flag_counts(p, flags, config)
    counts["rows"] = p.n_rows
    counts["null"] = int(p.df["vwap"].null_count())
    n_bad = counts["rows_violating"]
    if n_bad == 0:
        summary = f"every vwap of {p.n_rows} bars is null or within [low, high]"
        return GateResult(gate, True, False, summary, counts)
    evidence = _row_evidence(p, rows, ("symbol", "ts", "low", "high", "vwap"))
    for item, names in zip(evidence, violations):
        item["violations"] = names
    detail = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in flags if counts[k])
    summary = f"{n_bad} of {p.n_rows} bars have a vwap outside [low, high] ({detail})"
    summary += _keyed_first(p, rows)
    return GateResult(gate, False, False, summary, counts, evidence)


def trade_count(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = TRADE_COUNT
    if (absent := _absent(p, gate, "trade_count")) is not None:
        return absent
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    counts, rows, _ = _flag_counts(p, {"negative": pl.col("trade_count") < 0}, config)
    counts["rows"] = p.n_rows
    counts["null"] = int(p.df["trade_count"].null_count())
    n_bad = counts["rows_violating"]
    if n_bad == 0:
        return GateResult(gate, True, False, f"every trade_count of {p.n_rows} bars is null or >= 0", counts)
    evidence = _row_evidence(p, rows, ("symbol", "ts", "trade_count"))
    summary = f"{n_bad} of {p.n_rows} bars have a negative trade_count" + _keyed_first(p, rows)
    return GateResult(gate, False, False, summary, counts, evidence)


def volume_trades(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = VOLUME_TRADES
    if (absent := _absent(p, gate, "trade_count")) is not None:
        return absent
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    n, v = pl.col("trade_count"), pl.col("volume")
    known = n.is_not_null() & v.is_finite() & (v >= 0) & (n >= 0)  # the other gates own the bad values
    flags = {
        "volume_without_trades": known & (n == 0) & (v > 0),
        "trades_without_volume": known & (n > 0) & (v == 0),
    }
    counts, rows, violations = _flag_counts(p, flags, config)
    counts["rows"] = p.n_rows
    n_bad = counts["rows_violating"]
    if n_bad == 0:
        return GateResult(gate, True, False, f"volume and trade_count agree on all {p.n_rows} bars", counts)
    evidence = _row_evidence(p, rows, ("symbol", "ts", "volume", "trade_count"))
    for item, names in zip(evidence, violations):
        item["violations"] = names
    detail = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in flags if counts[k])
    summary = f"{n_bad} of {p.n_rows} bars: volume and trade_count disagree ({detail})"
    summary += _keyed_first(p, rows)
    return GateResult(gate, False, False, summary, counts, evidence)


def universe(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = UNIVERSE
    if not p.expected_symbols:
        return _skipped(gate, "no universe given (expected_symbols)")
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    known = pl.Series(p.expected_symbols, dtype=pl.String)
    unknown = ~pl.col("symbol").is_in(known.implode())
    counts, rows, _ = _flag_counts(p, {"rows_unknown_symbol": unknown}, config)
    names = p.df.lazy().filter(unknown).select(pl.col("symbol").unique().sort()).collect()["symbol"].to_list()
    counts.update(rows=p.n_rows, universe=len(p.expected_symbols), unknown_symbols=len(names))
    if not names:
        summary = f"every symbol is in the market's universe of {len(known)}"
        return GateResult(gate, True, False, summary, counts)
    evidence = [{"symbol": name, "universe_change": "added"} for name in names[: config.max_evidence]]
    summary = (
        f"{len(names)} symbol(s) not in the market's universe ({', '.join(names[:5])}"
        + (" ..." if len(names) > 5 else "")
        + f"), {counts['rows_unknown_symbol']} rows: a universe change"
    )
    return GateResult(gate, False, False, summary, counts, evidence)


# --- order and identity ------------------------------------------------------------------------
def monotonic_timestamps(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = MONOTONIC_TIMESTAMPS
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    codes, ts = p.sym_code, p.ts_us
    if p.n_rows < 2:
        bad_rows = prev_rows = np.zeros(0, dtype=np.int64)
    elif np.all(codes[1:] >= codes[:-1]):  # file grouped by symbol: delivery order is already per symbol
        bad = (codes[1:] == codes[:-1]) & (ts[1:] <= ts[:-1])
        bad_rows = np.flatnonzero(bad) + 1
        prev_rows = bad_rows - 1
    else:
        order = np.argsort(codes, kind="stable")  # stable: keeps delivery order within a symbol
        bad_rows, prev_rows = [], []
        for pairs in row_chunks((p.n_rows - 1, 1)):  # neighbours in that order, a chunk at a time
            row, prev = order[pairs.start + 1 : pairs.stop + 1], order[pairs]
            bad = (codes[row] == codes[prev]) & (ts[row] <= ts[prev])
            bad_rows.append(row[bad])
            prev_rows.append(prev[bad])
        bad_rows, prev_rows = np.concatenate(bad_rows), np.concatenate(prev_rows)
        sort = np.argsort(bad_rows, kind="stable")
        bad_rows, prev_rows = bad_rows[sort], prev_rows[sort]
    n_bad = int(bad_rows.size)
    counts = {"rows_out_of_order": n_bad, "rows": p.n_rows}
    if n_bad:
        counts["symbols_affected"] = int(np.unique(codes[bad_rows]).size)
    if n_bad == 0:
        return GateResult(
            gate, True, False, "timestamps strictly increase per symbol", counts
        )
    head = bad_rows[: config.max_evidence]
    prev_ts = np.array(
        [ts_from_us(x).isoformat() for x in ts[prev_rows[: config.max_evidence]]], dtype=object
    )
    evidence = _row_evidence(
        p, head, ("symbol", "ts"), previous_row=prev_rows[: config.max_evidence], previous_ts=prev_ts
    )
    summary = (
        f"{n_bad} bars do not follow their symbol's previous bar in time ({counts['symbols_affected']} symbols)"
        + _first_ts(p, head)
    )
    return GateResult(gate, False, False, summary, counts, evidence)




def duplicate_bars(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = DUPLICATE_BARS
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    counts_grid = p.cell_counts
    extra = p.n_aligned - int(np.count_nonzero(counts_grid))  # rows beyond the first of their cell
    keys = int(np.count_nonzero(counts_grid > 1)) if extra else 0
    rows = p.duplicated_aligned_rows
    if not p.all_aligned:  # bars off the grid can be duplicated too: hash them (a small subset)
        off = np.flatnonzero(~p.aligned)
        sub = p.df[off.tolist()].select("symbol", "ts").with_columns(row=pl.Series(off))
        dup = sub.filter(pl.struct("symbol", "ts").is_duplicated())
        if dup.height:
            keys += dup.select(pl.struct("symbol", "ts").n_unique()).item()
            extra += dup.height - dup.select(pl.struct("symbol", "ts").n_unique()).item()
            rows = np.sort(np.concatenate([rows, dup["row"].to_numpy()]))
    counts = {"duplicate_rows": extra, "duplicated_keys": keys, "rows": p.n_rows}
    if extra == 0:
        return GateResult(gate, True, False, "no (symbol, ts) appears twice", counts)
    head = rows[: config.max_evidence]
    evidence = _row_evidence(p, head, ("symbol", "ts", "open", "high", "low", "close", "volume"))
    summary = f"{extra} extra rows repeat {keys} (symbol, ts) keys" + _first_ts(p, head)
    return GateResult(gate, False, False, summary, counts, evidence)




# --- calendar --------------------------------------------------------------------------------------
def _gap_windows(p: PreparedBars) -> tuple[list[MissingBars], int, int]:
    """Missing (symbol, minute) cells as windows: market-wide ones first found across all symbols, then the
    per-symbol remainder. Windows are disjoint, so their missing minutes add up to the missing count."""
    spec = p.require_spec()
    exp = spec.expected_us
    presence = p.presence
    market_wide = ~presence.any(axis=0)
    windows: list[tuple[int, str, int, int]] = []
    _, mw_first, mw_last = runs_of_true(market_wide[None, :])
    windows += [(int(a), "*", int(a), int(b)) for a, b in zip(mw_first, mw_last)]
    residual = ~presence & ~market_wide[None, :]
    rows, firsts, lasts = runs_of_true(residual)
    total = len(windows) + int(rows.size)
    keep = max(0, MAX_GAP_WINDOWS - len(windows))
    windows += [
        (int(a), p.symbols[r], int(a), int(b)) for r, a, b in zip(rows[:keep], firsts[:keep], lasts[:keep])
    ]
    windows.sort(key=lambda w: (w[0], w[1] != "*", w[1]))
    out = [
        MissingBars(sym, ts_from_us(exp[a]), ts_from_us(exp[b] + MINUTE_US), b - a + 1)
        for _, sym, a, b in windows
    ]
    return out, total, int(market_wide.sum())


def completeness(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = COMPLETENESS
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    spec = p.require_spec()
    n_sym, n_min = len(p.symbols), spec.n_minutes
    if n_sym == 0:
        window = MissingBars(
            "*", ts_from_us(spec.expected_us[0]), ts_from_us(spec.expected_us[-1] + MINUTE_US), n_min
        )
        counts = {
            "expected": 0,
            "present": 0,
            "missing": 0,
            "coverage": 0.0,
            "expected_minutes": n_min,
            "symbols": 0,
        }
        summary = f"{spec.label}: no bars delivered and no expected symbols given (whole session missing)"
        return GateResult(gate, False, False, summary, counts, [], [window])
    expected = n_sym * n_min
    present = int(p.presence.sum())
    missing = expected - present
    coverage = present / expected
    counts: dict[str, int | float] = {
        "expected": expected,
        "present": present,
        "missing": missing,
        "coverage": coverage,
        "expected_minutes": n_min,
        "symbols": n_sym,
    }
    if p.expected_symbols:
        unexpected = sorted(set(p.symbols) - set(p.expected_symbols))
        counts["unexpected_symbols"] = len(unexpected)
    if missing == 0:
        return GateResult(
            gate, True, False, f"{spec.label}: all {expected} expected bars present", counts
        )
    windows, total, mw_minutes = _gap_windows(p)
    counts["gap_windows"] = total
    counts["market_wide_missing_minutes"] = mw_minutes
    missing_by_symbol = n_min - p.presence.sum(axis=1)
    worst = np.argsort(-missing_by_symbol, kind="stable")[: config.max_evidence]
    evidence = [
        {"symbol": p.symbols[i], "missing_minutes": int(missing_by_symbol[i])}
        for i in worst
        if missing_by_symbol[i]
    ]
    passed = coverage >= config.completeness_min_coverage
    first = windows[0]
    summary = (
        f"{spec.label}: {missing} of {expected} expected bars missing (coverage {coverage:.4%}) in {total} gap "
        f"window(s); first {first.symbol} {first.start.isoformat()}..{first.end.isoformat()}"
        + (f" (first {MAX_GAP_WINDOWS} windows kept)" if total > len(windows) else "")
    )
    return GateResult(gate, passed, False, summary, counts, evidence, windows)




def _boundaries(spec: SessionSpec) -> list[tuple[str, dt.datetime]]:
    out = []
    for h in spec.hours:
        out.append((f"{h.session} open", h.open))
        if h.break_start is not None:
            out += [(f"{h.session} break start", h.break_start), (f"{h.session} break end", h.break_end)]
        out.append((f"{h.session} close", h.close))
    return out


def _misalignment_reason(ts: dt.datetime, spec: SessionSpec) -> str:
    if ts.second or ts.microsecond:
        return "not on a minute boundary"
    nearest = min(
        spec.hours, key=lambda h: 0 if h.open <= ts < h.close else min(abs(ts - h.open), abs(ts - h.close))
    )
    if ts < nearest.open:
        return "before the open"
    if ts >= nearest.close:
        return "at or after the close"
    return "in the trading break"


def calendar_alignment(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = CALENDAR_ALIGNMENT
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    spec = p.require_spec()
    bad_rows = np.flatnonzero(~p.aligned)
    n_bad = int(bad_rows.size)
    first_open, last_close = spec.hours[0].open, spec.hours[-1].close
    counts: dict[str, int | float] = {"rows_misaligned": n_bad, "rows": p.n_rows}
    if n_bad == 0:
        return GateResult(
            gate,
            True,
            False,
            f"{spec.label}: every bar is an expected minute ({first_open:%H:%M}-{last_close:%H:%M} UTC)",
            counts,
        )
    bounds = _boundaries(spec)
    evidence = _row_evidence(p, bad_rows[: config.max_evidence], ("symbol", "ts"))
    for item, row in zip(evidence, bad_rows[: config.max_evidence]):
        ts = ts_from_us(p.ts_us[row])
        name, at = min(bounds, key=lambda b: abs(ts - b[1]))
        item.update(
            reason=_misalignment_reason(ts, spec),
            nearest_boundary=name,
            boundary_ts=at.isoformat(),
            minutes_from_boundary=(ts - at) / dt.timedelta(minutes=1),
        )
    bad_ts = p.ts_us[bad_rows]
    counts["before_first_open"] = int((bad_ts < spec.expected_us[0]).sum())
    counts["after_last_close"] = int((bad_ts > spec.expected_us[-1]).sum())
    counts["off_minute"] = int((bad_ts % MINUTE_US != 0).sum())
    shift = (ts_from_us(int(p.ts_us.min())) - first_open) / dt.timedelta(minutes=1)
    hint = ""
    if shift and shift % 60 == 0:
        hint = f"; earliest bar is {shift:+.0f} min from the open: DST or local-time stamps?"
    summary = (
        f"{spec.label}: {n_bad} of {p.n_rows} bars outside the expected minutes "
        f"({first_open:%H:%M}-{last_close:%H:%M} UTC, {spec.n_minutes} minutes)"
        + _first_ts(p, bad_rows)
        + hint
    )
    return GateResult(gate, False, False, summary, counts, evidence)




# --- prices --------------------------------------------------------------------------------------
def _cell_evidence(p: PreparedBars, sym: np.ndarray, minute: np.ndarray, **extra: np.ndarray) -> list[dict]:
    exp = p.require_spec().expected_us
    out = []
    for i, (s, m) in enumerate(zip(sym, minute)):
        item = {
            "symbol": p.symbols[s],
            "ts": ts_from_us(exp[m]).isoformat(),
            "close": float(p.close_grid[s, m]),
        }
        item.update({k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in extra.items()})
        out.append(item)
    return out


def _robust_z(r: np.ndarray) -> np.ndarray:
    """|r - median| / scale per row: scale = MAD x 1.4826, or MeanAD x 1.253314 where the MAD is 0; a row
    without any spread gets an infinite scale (nothing to flag); NaN where there is no return."""
    med = nan_median_rows(r)
    dev = np.subtract(r, med[:, None])
    np.abs(dev, out=dev)
    scale = MAD_TO_SIGMA * nan_median_rows(dev)
    no_mad = ~(scale > 0)  # MAD 0 (over half the returns equal) or no returns: the MeanAD fallback
    if no_mad.any():
        scale[no_mad] = MEANAD_TO_SIGMA * nan_mean_rows(dev[no_mad])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.inf)
    return np.divide(dev, scale[:, None], out=dev)  # in place: dev is not needed any more


def price_spikes(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = PRICE_SPIKES
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    r = p.returns
    n_returns, max_z, sym, minute, z = 0, 0.0, [], [], []
    for rows in row_chunks(r.shape):  # a chunk of symbols at a time: the temporaries stay in cache
        chunk_z = _robust_z(r[rows])
        n_returns += int(np.count_nonzero(np.isfinite(r[rows])))
        max_z = max(max_z, float(np.nanmax(chunk_z, initial=0.0)))
        chunk_sym, chunk_minute = np.nonzero(chunk_z > config.spike_z_threshold)  # NaN compares False
        sym.append(chunk_sym + rows.start)
        minute.append(chunk_minute)
        z.append(chunk_z[chunk_sym, chunk_minute])
    sym, minute, z = np.concatenate(sym), np.concatenate(minute), np.concatenate(z)
    n = int(sym.size)
    counts: dict[str, int | float] = {
        "returns": n_returns,
        "spikes": n,
        "threshold_z": config.spike_z_threshold,
    }
    if n == 0:
        counts["max_abs_z"] = max_z
        return GateResult(
            gate,
            True,
            False,
            f"no 1-minute return beyond {config.spike_z_threshold} robust z",
            counts,
        )
    counts["symbols_affected"] = int(np.unique(sym).size)
    counts["max_abs_z"] = max_z
    top = np.argsort(-z, kind="stable")[: config.max_evidence]
    sym, minute, z = sym[top], minute[top], z[top]
    exp = p.require_spec().expected_us
    evidence = _cell_evidence(
        p,
        sym,
        minute,
        previous_ts=np.array(
            [ts_from_us(exp[m]).isoformat() for m in p.previous_bar_minute(sym, minute)], dtype=object
        ),
        log_return=r[sym, minute],
        robust_z=z,
    )
    first = evidence[0]
    summary = (
        f"{n} price spikes (robust z > {config.spike_z_threshold:g}) in {counts['symbols_affected']} symbols; "
        f"largest {first['symbol']} {first['ts']} z={first['robust_z']:.1f}"
    )
    return GateResult(gate, False, False, summary, counts, evidence)


def price_scale(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = PRICE_SCALE
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    r = p.returns
    limit = config.price_scale_log_threshold
    flagged = (r > limit) | (r < -limit)  # NaN (no return) compares False
    n = int(flagged.sum())
    counts: dict[str, int | float] = {
        "returns": int(np.isfinite(r).sum()),
        "scale_breaks": n,
        "threshold_factor": float(np.exp(limit)),
        "max_abs_log_return": float(max(np.nanmax(r, initial=0.0), -np.nanmin(r, initial=0.0))),
    }
    if n == 0:
        return GateResult(
            gate,
            True,
            False,
            f"no 1-minute move beyond x{counts['threshold_factor']:g}",
            counts,
        )
    sym, minute = np.nonzero(flagged)
    counts["symbols_affected"] = int(np.unique(sym).size)
    sym, minute = sym[: config.max_evidence], minute[: config.max_evidence]
    previous = p.previous_bar_minute(sym, minute)
    exp = p.require_spec().expected_us
    evidence = _cell_evidence(
        p,
        sym,
        minute,
        previous_close=p.close_grid[sym, previous],
        previous_ts=np.array([ts_from_us(exp[m]).isoformat() for m in previous], dtype=object),
        factor=np.exp(r[sym, minute]),
    )
    first = evidence[0]
    summary = (
        f"{n} one-minute moves beyond x{counts['threshold_factor']:g} in {counts['symbols_affected']} symbols "
        f"(unit or scale error?); first {first['symbol']} {first['ts']} x{first['factor']:.4g}"
    )
    return GateResult(gate, False, False, summary, counts, evidence)






def stale_prices(p: PreparedBars, config: GateConfig) -> GateResult:
    gate = STALE_PRICES
    if reason := p.unusable(REQUIRED[gate]):
        return not_evaluated(gate, reason)
    close, frozen = p.close_grid.ravel(), p.frozen_cells
    n_min = p.close_grid.shape[1]
    linked = frozen[:-1][(frozen[1:] == frozen[:-1] + 1) & (frozen[:-1] % n_min != n_min - 1)]  # same symbol
    linked = linked[close[linked + 1] == close[linked]]  # a link: minute and minute + 1 frozen at one close
    sym, first_link, last_link = runs_of_cells(*np.divmod(linked, n_min))
    length = last_link - first_link + 2  # a run of k links covers k + 1 bars
    keep = length >= config.stale_min_minutes
    sym, start, end, length = sym[keep], first_link[keep], last_link[keep] + 1, length[keep]
    n = int(sym.size)
    counts: dict[str, int | float] = {
        "stale_runs": n,
        "stale_bars": int(length.sum()),
        "min_minutes": config.stale_min_minutes,
    }
    if n == 0:
        return GateResult(
            gate,
            True,
            False,
            f"no frozen run of {config.stale_min_minutes}+ minutes",
            counts,
        )
    counts["symbols_affected"] = int(np.unique(sym).size)
    counts["longest_run_minutes"] = int(length.max())
    order = np.argsort(-length, kind="stable")[: config.max_evidence]
    exp = p.require_spec().expected_us
    evidence = _cell_evidence(
        p,
        sym[order],
        start[order],
        last_ts=np.array([ts_from_us(exp[m]).isoformat() for m in end[order]], dtype=object),
        minutes=length[order],
    )
    first = evidence[0]
    summary = (
        f"{n} frozen runs (o=h=l=c, unchanged close, >= {config.stale_min_minutes} min) in "
        f"{counts['symbols_affected']} symbols; longest {first['symbol']} {first['ts']}..{first['last_ts']} "
        f"({first['minutes']} min at {first['close']:g})"
    )
    return GateResult(gate, False, False, summary, counts, evidence)




# --- freshness -------------------------------------------------------------------------------------
def freshness(
    landed_at: dt.datetime | None,
    deadline: dt.datetime | None,
    *,
    is_backfill: bool = False,
    config: GateConfig = DEFAULT_CONFIG,
) -> GateResult:
    """The session first landed before its deadline (session close + the market's SLA).

    Timeliness is judged once: ``landed_at`` is the session's *first* landing, and only the delivery path can
    fail it. A backfill (or any later re-landing) of a session lands after the deadline by construction: it
    passes, and says whether the session was late when it first landed (``late_at_first_landing``), so a
    healthy re-run never shows a failing check.
    """
    gate = FRESHNESS
    if landed_at is None or deadline is None:
        return _skipped(gate, "landed_at and deadline not given")
    for name, value in (("landed_at", landed_at), ("deadline", deadline)):
        if value.tzinfo is None:
            raise GateInputError(
                f"freshness: {name} {value.isoformat()} has no time zone; pass UTC datetimes"
            )
    late = (landed_at - deadline).total_seconds()
    counts = {"seconds_late": max(late, 0.0), "seconds_early": max(-late, 0.0), "backfill": int(is_backfill),
              "late_at_first_landing": int(late > 0)}
    stamp = (f"first landed {landed_at.astimezone(dt.UTC).isoformat()}, "
             f"deadline {deadline.astimezone(dt.UTC).isoformat()}")
    if is_backfill:
        verdict = f"late by {late:.0f} s at its first landing" if late > 0 else "on time at its first landing"
        return GateResult(gate, True, False, f"backfill or re-landing of a session {verdict} ({stamp})", counts)
    if late <= 0:
        return GateResult(
            gate,
            True,
            False,
            f"on time, {-late:.0f} s before the deadline ({stamp})",
            counts,
        )
    return GateResult(gate, False, False, f"late by {late:.0f} s ({stamp})", counts)

