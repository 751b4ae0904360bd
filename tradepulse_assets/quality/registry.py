"""The gate registry: every quality gate declared once (name, columns, blocking default, function, rule).

Why one table: the suite, the Dagster asset checks, the standalone ``check_*`` functions and the gate table in
docs/quality-gates.md used to be four hand-kept lists that could drift (a gate missing from the suite, a
column no gate looks at, a doc row that lies). Everything that enumerates gates reads ``GATES``; a test checks
that every column of the bar schema is covered by a gate and that the docs table is the one rendered here.

Blocking is policy, not judgement: a gate function only says pass/fail with evidence; ``GateSpec.run``
stamps ``blocking`` from the declared default, the ``GateConfig.blocking`` overrides (per market: the
universe policy) and the backfill waiver of freshness.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import polars as pl

from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS
from tradepulse_assets.markets.calendars import MarketCalendar
from tradepulse_assets.markets.registry import UNKNOWN_SYMBOL_POLICIES, Market
import tradepulse_assets.quality.gates as gates
from tradepulse_assets.quality.session_grid import PreparedBars, session_spec
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
    GateConfig,
    GateResult,
)

#: Every column a bar file may carry; the registry must cover each with at least one gate besides ``schema``.
SCHEMA_COLUMNS: tuple[str, ...] = (*BAR_COLUMNS, *OPTIONAL_BAR_COLUMNS)

#: What a market's registry entry may say about a symbol outside its universe (``unknown_symbols``).
UNIVERSE_POLICIES: dict[str, str] = {
    "block": "the session is blocked (the universe gate fails as ERROR); add the symbol to the registry",
    "promote_with_warning": "the session is promoted; the universe gate fails as WARN and the audit trail "
    "records a universe_change event per new symbol",
}
assert tuple(UNIVERSE_POLICIES) == UNKNOWN_SYMBOL_POLICIES, "one description per registry policy"


@dataclasses.dataclass(frozen=True)
class SuiteInputs:
    """What the gates of one partition look at: the prepared bars and the delivery facts beside them."""

    prepared: PreparedBars
    vendor_total: int | None = None
    checksums_ok: bool | None = None
    vendor_file_counts: Mapping[str, int] | None = None
    landed_file_counts: Mapping[str, int] | None = None
    vendor_condition: str | None = None
    landed_at: dt.datetime | None = None
    deadline: dt.datetime | None = None
    is_backfill: bool = False


@dataclasses.dataclass(frozen=True)
class GateSpec:
    """One gate: its stable name, the bar columns it judges, whether its failure blocks by default, the
    function, and the one-line rule shown in docs/quality-gates.md."""

    name: str
    columns: tuple[str, ...]
    blocking: bool
    evaluate: Callable[[SuiteInputs, GateConfig], GateResult]
    rule: str
    waived_for_backfill: bool = False  # a backfill lands late by construction: never blocks on this gate
    on_grid: bool = False  # judges the (symbol, minute) grid: the suite runs these beside the row gates

    def is_blocking(self, config: GateConfig = DEFAULT_CONFIG) -> bool:
        return dict(config.blocking).get(self.name, self.blocking)

    def run(self, inputs: SuiteInputs, config: GateConfig = DEFAULT_CONFIG) -> GateResult:
        blocking = self.is_blocking(config) and not (self.waived_for_backfill and inputs.is_backfill)
        return dataclasses.replace(self.evaluate(inputs, config), blocking=blocking)


def _on_frame(fn: Callable[[PreparedBars, GateConfig], GateResult]):
    return lambda inputs, config: fn(inputs.prepared, config)


def _reconciliation(inputs: SuiteInputs, config: GateConfig) -> GateResult:
    return gates.manifest_reconciliation(
        inputs.prepared.n_rows,
        inputs.vendor_total,
        inputs.checksums_ok,
        vendor_file_counts=inputs.vendor_file_counts,
        landed_file_counts=inputs.landed_file_counts,
        vendor_condition=inputs.vendor_condition,
        config=config,
    )


def _freshness(inputs: SuiteInputs, config: GateConfig) -> GateResult:
    return gates.freshness(inputs.landed_at, inputs.deadline, is_backfill=inputs.is_backfill, config=config)


PRICES = ("open", "high", "low", "close")

#: The gates, in the order the suite runs and reports them (schema first: the others say "not evaluated"
#: where the schema broke a column they need).
GATES: tuple[GateSpec, ...] = (
    GateSpec(
        SCHEMA, SCHEMA_COLUMNS, True, _on_frame(gates.schema),
        "pandera `BarSchema` (strict): missing, renamed or extra columns, types, nulls in required columns",
    ),
    GateSpec(
        MANIFEST_RECONCILIATION, (), True, _reconciliation,
        "landed rows = vendor total (per file when file counts are given), checksums verified at landing, "
        "the vendor's condition is not `degraded`; skipped when no manifest facts are given",
    ),
    GateSpec(
        OHLC_CONSISTENCY, PRICES, True, _on_frame(gates.ohlc_consistency),
        "low <= min(open, close), high >= max(open, close), low <= high, every price finite and > 0",
    ),
    GateSpec(
        DUPLICATE_BARS, ("symbol", "ts"), True, _on_frame(gates.duplicate_bars),
        "no (symbol, ts) delivered more than once",
        on_grid=True,
    ),
    GateSpec(
        MONOTONIC_TIMESTAMPS, ("symbol", "ts"), True, _on_frame(gates.monotonic_timestamps),
        "per symbol, ts strictly increasing in delivery order",
    ),
    GateSpec(
        COMPLETENESS, ("symbol", "ts"), True, _on_frame(gates.completeness),
        "every (symbol, expected minute) present; coverage >= `completeness_min_coverage` (default 1.0)",
        on_grid=True,
    ),
    GateSpec(
        CALENDAR_ALIGNMENT, ("ts",), True, _on_frame(gates.calendar_alignment),
        "no bar outside the session's expected minutes (DST, early closes, lunch breaks, local time as UTC)",
        on_grid=True,
    ),
    GateSpec(
        PRICE_SPIKES, ("close",), False, _on_frame(gates.price_spikes),
        "robust z of 1-minute log returns > `spike_z_threshold` (default 100); flags, never drops",
        on_grid=True,
    ),
    GateSpec(
        PRICE_SCALE, ("close",), True, _on_frame(gates.price_scale),
        "abs(1-minute log return) > `price_scale_log_threshold` (default log 10: a tenfold move)",
        on_grid=True,
    ),
    GateSpec(
        STALE_PRICES, PRICES, True, _on_frame(gates.stale_prices),
        "a run of >= `stale_min_minutes` (default 10) bars with o=h=l=c and an unchanged close",
        on_grid=True,
    ),
    GateSpec(
        NEGATIVE_VOLUME, ("volume",), True, _on_frame(gates.negative_volume),
        "volume finite and >= 0",
    ),
    GateSpec(
        VWAP_RANGE, ("vwap",), True, _on_frame(gates.vwap_range),
        "vwap null (by contract: the column is optional and may be null) or finite within [low, high]",
    ),
    GateSpec(
        TRADE_COUNT, ("trade_count",), True, _on_frame(gates.trade_count),
        "trade_count null (optional) or >= 0",
    ),
    GateSpec(
        VOLUME_TRADES, ("volume", "trade_count"), True, _on_frame(gates.volume_trades),
        "volume > 0 exactly when trade_count > 0 (no volume without trades, no trades without volume)",
    ),
    GateSpec(
        UNIVERSE, ("symbol",), True, _on_frame(gates.universe),
        "every symbol is in the market's universe; an unknown symbol follows the market's `unknown_symbols` "
        "policy (`block`, or `promote_with_warning` + a universe_change audit record)",
    ),
    GateSpec(
        FRESHNESS, (), False, _freshness,
        "landed_at <= deadline (session close + the market's SLA); a backfill passes and never blocks",
        waived_for_backfill=True,
    ),
)

GATE_NAMES: tuple[str, ...] = tuple(spec.name for spec in GATES)
_BY_NAME = {spec.name: spec for spec in GATES}


def gate_spec(name: str) -> GateSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown quality gate {name!r}; known: {', '.join(GATE_NAMES)}") from None


def gate_is_blocking(name: str, config: GateConfig = DEFAULT_CONFIG) -> bool:
    """Whether ``name`` stops promotion under ``config`` (Dagster declares its asset checks from this)."""
    return gate_spec(name).is_blocking(config)


def config_for_market(market: Market, base: GateConfig = DEFAULT_CONFIG) -> GateConfig:
    """``base`` with the universe gate blocking or not per the market's ``unknown_symbols`` policy (unless
    ``base`` already says so explicitly)."""
    if UNIVERSE in dict(base.blocking):
        return base
    overrides = {**dict(base.blocking), UNIVERSE: market.unknown_symbols == "block"}
    return dataclasses.replace(base, blocking=overrides)


def run_gate(
    name: str,
    bars: pl.DataFrame | pl.LazyFrame | None = None,
    calendar: MarketCalendar | None = None,
    session: dt.date | Sequence[dt.date] | None = None,
    *,
    expected_symbols: Sequence[str] | None = None,
    config: GateConfig = DEFAULT_CONFIG,
    **facts,
) -> GateResult:
    """One registered gate on its own (what the suite does for each); ``facts`` are ``SuiteInputs`` fields."""
    spec = session_spec(calendar, session) if calendar is not None else None
    frame = bars if bars is not None else pl.DataFrame()
    return gate_spec(name).run(SuiteInputs(PreparedBars(frame, spec, expected_symbols), **facts), config)


# --- the docs table ----------------------------------------------------------------------------------
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "quality-gates.md"
DOC_BEGIN = "<!-- gate-table:begin (generated by `python -m tradepulse_assets.quality`) -->"
DOC_END = "<!-- gate-table:end -->"


def gate_table_markdown() -> str:
    """The gate table of docs/quality-gates.md, rendered from ``GATES``."""
    lines = ["| gate | columns | blocking | rule |", "| --- | --- | --- | --- |"]
    for spec in GATES:
        columns = ", ".join(f"`{c}`" for c in spec.columns) if spec.columns else "(delivery)"
        blocking = "yes" if spec.blocking else "no (WARN)"
        lines.append(f"| `{spec.name}` | {columns} | {blocking} | {spec.rule} |")
    return "\n".join(lines)


def doc_with_table(text: str) -> str:
    """``text`` (the docs page) with the generated section replaced by the current table."""
    head, sep, rest = text.partition(DOC_BEGIN)
    _, sep2, tail = rest.partition(DOC_END)
    if not sep or not sep2:
        raise ValueError(f"docs page lacks the markers {DOC_BEGIN!r} ... {DOC_END!r}")
    return f"{head}{DOC_BEGIN}\n{gate_table_markdown()}\n{DOC_END}{tail}"


def uncovered_columns() -> list[str]:
    """Bar-schema columns no gate besides ``schema`` judges (must be empty)."""
    covered = {c for spec in GATES if spec.name != SCHEMA for c in spec.columns}
    return [c for c in SCHEMA_COLUMNS if c not in covered]
