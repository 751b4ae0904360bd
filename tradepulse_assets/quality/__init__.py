"""Quality gates: pure polars/NumPy functions over one partition's bars, returning structured verdicts.

Nothing here knows Dagster: ``defs/`` turns each ``GateResult`` into an asset check (blocking gates stop
promotion from staging to production) and the health catalog (``quality.catalog``) keeps every verdict per
market and session for the incident engine and for people. This package imports only ``markets``.
"""

from tradepulse_assets.quality.catalog import health_catalog_sql, read_health, write_health
from tradepulse_assets.quality.gates import (
    check_calendar_alignment,
    check_completeness,
    check_duplicate_bars,
    check_freshness,
    check_manifest_reconciliation,
    check_monotonic_timestamps,
    check_negative_volume,
    check_ohlc_consistency,
    check_price_scale,
    check_price_spikes,
    check_schema,
    check_stale_prices,
    gate_is_blocking,
)
from tradepulse_assets.quality.prepared import GateInputError, PreparedBars, SessionSpec, session_spec
from tradepulse_assets.quality.results import DEFAULT_CONFIG, GATE_NAMES, GapWindow, GateConfig, GateResult
from tradepulse_assets.quality.suite import failed_gates, run_gate_suite, suite_passed

__all__ = [
    "DEFAULT_CONFIG",
    "GATE_NAMES",
    "GapWindow",
    "GateConfig",
    "GateInputError",
    "GateResult",
    "PreparedBars",
    "SessionSpec",
    "check_calendar_alignment",
    "check_completeness",
    "check_duplicate_bars",
    "check_freshness",
    "check_manifest_reconciliation",
    "check_monotonic_timestamps",
    "check_negative_volume",
    "check_ohlc_consistency",
    "check_price_scale",
    "check_price_spikes",
    "check_schema",
    "check_stale_prices",
    "failed_gates",
    "gate_is_blocking",
    "health_catalog_sql",
    "read_health",
    "run_gate_suite",
    "session_spec",
    "suite_passed",
    "write_health",
]
