"""The gate suite: every registered gate over one partition in one pass, sharing the prepared frame.

The gates and their order come from ``quality.registry`` (schema first: the other gates say "not evaluated"
where the schema broke a column they need). On a large partition the gates of the (symbol, minute) grid run on
a second thread beside the gates of the delivered rows: the two share only the symbol codes and timestamps
(computed first), and NumPy and polars release the GIL in their loops, so on two cores the suite takes about
the longer of the two instead of their sum. Results are the same either way, in the registry's order.
"""

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from tradepulse_assets.markets.calendars import MarketCalendar
from tradepulse_assets.quality.session_grid import PreparedBars, session_spec
from tradepulse_assets.quality.registry import GATES, GateSpec, SuiteInputs
from tradepulse_assets.quality.results import DEFAULT_CONFIG, GateConfig, GateResult

#: Below this many rows the suite runs on one thread (a second one would cost more than it saves).
TWO_LANES_MIN_ROWS = 200_000


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
    vendor_condition: str | None = None,
    is_backfill: bool = False,
) -> list[GateResult]:
    """All gates on one partition, in ``GATE_NAMES`` order.

    ``session`` is a session date (or several, to validate a backfill span in one go); ``expected_symbols``
    (e.g. ``market.symbols``) is the market's universe: completeness sees a symbol missing altogether, and the
    universe gate sees a symbol that is not in it.
    """
    inputs = SuiteInputs(
        PreparedBars(bars, session_spec(calendar, session), expected_symbols),
        vendor_total=vendor_total,
        checksums_ok=checksums_ok,
        vendor_file_counts=vendor_file_counts,
        landed_file_counts=landed_file_counts,
        vendor_condition=vendor_condition,
        landed_at=landed_at,
        deadline=deadline,
        is_backfill=is_backfill,
    )
    return run_gates(GATES, inputs, config)


def run_gates(
    specs: Sequence[GateSpec], inputs: SuiteInputs, config: GateConfig = DEFAULT_CONFIG
) -> list[GateResult]:
    """``specs`` on ``inputs``, in their order; the grid gates on a second thread for a large partition."""
    prepared = inputs.prepared
    grid = [spec for spec in specs if spec.on_grid]
    if prepared.n_rows < TWO_LANES_MIN_ROWS or not grid:
        return [spec.run(inputs, config) for spec in specs]
    if prepared.unusable(("symbol", "ts")) is None:  # shared by both lanes: computed once, before they split
        prepared.sym_code, prepared.ts_us
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate-grid") as pool:
        grid_results = pool.submit(lambda: [spec.run(inputs, config) for spec in grid])
        by_name = {spec.name: spec.run(inputs, config) for spec in specs if not spec.on_grid}
        by_name.update(zip((spec.name for spec in grid), grid_results.result()))
    return [by_name[spec.name] for spec in specs]


def suite_passed(results: Iterable[GateResult], blocking_only: bool = True) -> bool:
    """True when no gate failed (only blocking gates count unless ``blocking_only`` is False)."""
    return all(r.passed for r in results if r.blocking or not blocking_only)


def failed_gates(results: Iterable[GateResult], blocking_only: bool = False) -> list[str]:
    """Names of the failed gates, for incident titles and logs."""
    return [r.gate for r in results if not r.passed and (r.blocking or not blocking_only)]
