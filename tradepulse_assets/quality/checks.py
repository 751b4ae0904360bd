"""Each registered gate as a standalone function (``check_<gate>``), for notebooks, tests and benchmarks.

Thin on purpose: each one runs ``registry.run_gate`` with the arguments that gate needs, so a standalone check
and the same gate inside the suite can never disagree (same function, same blocking policy).
"""

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from tradepulse_assets.markets.calendars import MarketCalendar
import tradepulse_assets.quality.results as names
from tradepulse_assets.quality.registry import run_gate
from tradepulse_assets.quality.results import DEFAULT_CONFIG, GateConfig, GateResult

Bars = pl.DataFrame | pl.LazyFrame
Sessions = dt.date | Sequence[dt.date]


def check_schema(bars: Bars, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    """pandera ``BarSchema`` (strict) on the collected frame: missing/renamed/extra columns, types, nulls."""
    return run_gate(names.SCHEMA, bars, config=config)


def check_manifest_reconciliation(
    n_rows: int,
    vendor_total: int | None = None,
    checksums_ok: bool | None = None,
    *,
    vendor_file_counts: Mapping[str, int] | None = None,
    landed_file_counts: Mapping[str, int] | None = None,
    vendor_condition: str | None = None,
    config: GateConfig = DEFAULT_CONFIG,
) -> GateResult:
    """Landed row count against the vendor's manifest total (per file when both sides are given), the
    checksum verdict computed by landing, and the vendor's condition (``degraded`` fails)."""
    rows = pl.DataFrame({"row": range(int(n_rows))})  # only the count matters to this gate
    return run_gate(
        names.MANIFEST_RECONCILIATION, rows, config=config, vendor_total=vendor_total,
        checksums_ok=checksums_ok,
        vendor_file_counts=vendor_file_counts,
        landed_file_counts=landed_file_counts,
        vendor_condition=vendor_condition,
    )


def check_ohlc_consistency(bars: Bars, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    return run_gate(names.OHLC_CONSISTENCY, bars, config=config)


def check_negative_volume(bars: Bars, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    return run_gate(names.NEGATIVE_VOLUME, bars, config=config)


def check_vwap_range(bars: Bars, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    return run_gate(names.VWAP_RANGE, bars, config=config)


def check_trade_count(bars: Bars, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    return run_gate(names.TRADE_COUNT, bars, config=config)


def check_volume_trades(bars: Bars, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    return run_gate(names.VOLUME_TRADES, bars, config=config)


def check_universe(bars: Bars, universe: Sequence[str], config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    return run_gate(names.UNIVERSE, bars, expected_symbols=universe, config=config)


def check_monotonic_timestamps(bars: Bars, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
    return run_gate(names.MONOTONIC_TIMESTAMPS, bars, config=config)


def check_duplicate_bars(
    bars: Bars, calendar: MarketCalendar, session: Sessions, config: GateConfig = DEFAULT_CONFIG
) -> GateResult:
    return run_gate(names.DUPLICATE_BARS, bars, calendar, session, config=config)


def check_completeness(
    bars: Bars,
    calendar: MarketCalendar,
    session: Sessions,
    expected_symbols: Sequence[str] | None = None,
    config: GateConfig = DEFAULT_CONFIG,
) -> GateResult:
    """Every (symbol, expected minute) present; symbols are ``expected_symbols`` plus those delivered."""
    return run_gate(
        names.COMPLETENESS, bars, calendar, session, expected_symbols=expected_symbols, config=config
    )


def check_calendar_alignment(
    bars: Bars, calendar: MarketCalendar, session: Sessions, config: GateConfig = DEFAULT_CONFIG
) -> GateResult:
    return run_gate(names.CALENDAR_ALIGNMENT, bars, calendar, session, config=config)


def check_price_spikes(
    bars: Bars, calendar: MarketCalendar, session: Sessions, config: GateConfig = DEFAULT_CONFIG
) -> GateResult:
    return run_gate(names.PRICE_SPIKES, bars, calendar, session, config=config)


def check_price_scale(
    bars: Bars, calendar: MarketCalendar, session: Sessions, config: GateConfig = DEFAULT_CONFIG
) -> GateResult:
    return run_gate(names.PRICE_SCALE, bars, calendar, session, config=config)


def check_stale_prices(
    bars: Bars, calendar: MarketCalendar, session: Sessions, config: GateConfig = DEFAULT_CONFIG
) -> GateResult:
    return run_gate(names.STALE_PRICES, bars, calendar, session, config=config)


def check_freshness(
    landed_at: dt.datetime | None,
    deadline: dt.datetime | None,
    *,
    is_backfill: bool = False,
    config: GateConfig = DEFAULT_CONFIG,
) -> GateResult:
    """The partition landed before its deadline; a backfill is reported, never failed or blocking."""
    return run_gate(
        names.FRESHNESS, config=config, landed_at=landed_at, deadline=deadline, is_backfill=is_backfill
    )
