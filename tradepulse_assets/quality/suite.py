"""The gate suite: every gate over one partition in one pass, sharing the prepared frame.

Order matters only for reading: schema first (the other gates say "not evaluated" where the schema broke a
column they need), then reconciliation, row rules, identity and order, the calendar, prices, freshness.
"""

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from tradepulse_assets.markets.calendars import MarketCalendar
from tradepulse_assets.quality import gates as g
from tradepulse_assets.quality.prepared import PreparedBars, session_spec
from tradepulse_assets.quality.results import DEFAULT_CONFIG, GateConfig, GateResult

_DATA_GATES = (
    g._schema,
    None,  # manifest reconciliation: inputs are not in the frame
    g._ohlc_consistency,
    g._duplicate_bars,
    g._monotonic_timestamps,
    g._completeness,
    g._calendar_alignment,
    g._price_spikes,
    g._price_scale,
    g._stale_prices,
    g._negative_volume,
)


def run_gate_suite(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: MarketCalendar,
    session: dt.date | Sequence[dt.date],
    *,
    vendor_total: int | None = None,
    checksums_ok: bool | None = None,
    landed_at: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
    config: GateConfig = DEFAULT_CONFIG,
    expected_symbols: Sequence[str] | None = None,
    vendor_file_counts: Mapping[str, int] | None = None,
    landed_file_counts: Mapping[str, int] | None = None,
    is_backfill: bool = False,
) -> list[GateResult]:
    """All gates on one partition, in ``GATE_NAMES`` order.

    ``session`` is a session date (or several, to validate a backfill span in one go); ``expected_symbols``
    (e.g. ``market.symbols``) lets completeness see a symbol that is missing altogether.
    """
    prepared = PreparedBars(bars, session_spec(calendar, session), expected_symbols)
    results = []
    for gate in _DATA_GATES:
        if gate is None:
            results.append(
                g.check_manifest_reconciliation(
                    prepared.n_rows,
                    vendor_total,
                    checksums_ok,
                    vendor_file_counts=vendor_file_counts,
                    landed_file_counts=landed_file_counts,
                    config=config,
                )
            )
        else:
            results.append(gate(prepared, config))
    results.append(g.check_freshness(landed_at, deadline, is_backfill=is_backfill, config=config))
    return results


def suite_passed(results: Iterable[GateResult], blocking_only: bool = True) -> bool:
    """True when no gate failed (only blocking gates count unless ``blocking_only`` is False)."""
    return all(r.passed for r in results if r.blocking or not blocking_only)


def failed_gates(results: Iterable[GateResult], blocking_only: bool = False) -> list[str]:
    """Names of the failed gates, for incident titles and logs."""
    return [r.gate for r in results if not r.passed and (r.blocking or not blocking_only)]
