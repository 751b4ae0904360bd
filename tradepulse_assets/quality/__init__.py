"""Quality gates: pure polars/NumPy functions over one partition's bars, returning structured verdicts.

Nothing here knows Dagster: ``defs/`` turns each ``GateResult`` into an asset check (blocking gates stop
promotion from staging to production) and the health catalog (``quality.catalog``) keeps every verdict per
market and session for the incident engine and for people. Every gate is declared once in
``quality.registry``. This package imports only ``markets``; its modules import each other directly, never
this ``__init__`` (no package-level cycle).
"""

from tradepulse_assets.quality.catalog import health_catalog_sql, read_health, write_health
from tradepulse_assets.quality.checks import (
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
    check_trade_count,
    check_universe,
    check_volume_trades,
    check_vwap_range,
)
from tradepulse_assets.quality.session_grid import GateInputError, PreparedBars, SessionSpec, session_spec
from tradepulse_assets.quality.registry import (
    GATE_NAMES,
    GATES,
    UNIVERSE_POLICIES,
    GateSpec,
    config_for_market,
    gate_is_blocking,
    gate_spec,
    run_gate,
)
from tradepulse_assets.quality.results import DEFAULT_CONFIG, GateConfig, GateResult, MissingBars
from tradepulse_assets.quality.suite import failed_gates, run_gate_suite, suite_passed

__all__ = [
    "DEFAULT_CONFIG",
    "GATES",
    "GATE_NAMES",
    "UNIVERSE_POLICIES",
    "GateConfig",
    "GateInputError",
    "GateResult",
    "GateSpec",
    "MissingBars",
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
    "check_trade_count",
    "check_universe",
    "check_volume_trades",
    "check_vwap_range",
    "config_for_market",
    "failed_gates",
    "gate_is_blocking",
    "gate_spec",
    "health_catalog_sql",
    "read_health",
    "run_gate",
    "run_gate_suite",
    "session_spec",
    "suite_passed",
    "write_health",
]
