"""What a quality gate returns, and the knobs that decide its verdict.

Gates are read by three audiences at once: Dagster (an asset check per gate, blocking or not), the incident
engine (which gate failed, how badly, which minutes to backfill) and a person on call (one line to act on and
the first offending rows). One frozen result type serves all three, so the verdict, the evidence and the
metadata shown in the UI can never disagree.
"""

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Stable gate names: Dagster asset-check names and the names the vendor fault scenarios expect. Which gates
#: run, on which columns and whether they block is declared once, in ``quality.registry``.
SCHEMA = "schema"
MANIFEST_RECONCILIATION = "manifest_reconciliation"
OHLC_CONSISTENCY = "ohlc_consistency"
DUPLICATE_BARS = "duplicate_bars"
MONOTONIC_TIMESTAMPS = "monotonic_timestamps"
COMPLETENESS = "completeness"
CALENDAR_ALIGNMENT = "calendar_alignment"
PRICE_SPIKES = "price_spikes"
PRICE_SCALE = "price_scale"
STALE_PRICES = "stale_prices"
NEGATIVE_VOLUME = "negative_volume"
FRESHNESS = "freshness"
VWAP_RANGE = "vwap_range"
TRADE_COUNT = "trade_count"
VOLUME_TRADES = "volume_trades"
UNIVERSE = "universe"

MAX_EVIDENCE_ROWS = 20
#: Gap windows carried in Dagster metadata (the result itself keeps them all, the backfill needs every one).
MAX_METADATA_GAP_WINDOWS = 50


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gates. Defaults are calibrated on clean simulated sessions (see docs/quality-gates.md).

    - ``spike_z_threshold``: robust z-score (median/MAD of a symbol's 1-minute log returns) above which a
      return is flagged as a spike. Clean Student-t(4) minute returns reach z ~ 60 over 1.5 M returns
      (measured, docs/quality-gates.md), a x100 price error z ~ 6,000: 100 keeps clean data silent and a
      bad print of about 10 % or more visible.
    - ``price_scale_log_threshold``: |1-minute log return| above which a move is a unit/scale error
      (default log(10): a tenfold move within one minute), blocking.
    - ``stale_min_minutes``: a run of at least this many consecutive minutes with o=h=l=c and an unchanged close
      is a frozen feed.
    - ``completeness_min_coverage``: share of expected (symbol, minute) bars that must be present.
    - ``blocking``: per-gate overrides of the registry's blocking default, e.g. ``{"universe": False}`` for a
      market whose policy promotes unknown symbols with a warning, or ``{"freshness": True}``.
    """

    spike_z_threshold: float = 100.0
    price_scale_log_threshold: float = math.log(10.0)
    stale_min_minutes: int = 10
    completeness_min_coverage: float = 1.0
    max_evidence: int = MAX_EVIDENCE_ROWS
    blocking: Mapping[str, bool] | tuple[tuple[str, bool], ...] = ()

    def __post_init__(self) -> None:
        pairs = self.blocking.items() if isinstance(self.blocking, Mapping) else self.blocking
        object.__setattr__(self, "blocking", tuple(sorted((str(k), bool(v)) for k, v in pairs)))  # hashable
        if self.spike_z_threshold <= 0 or self.price_scale_log_threshold <= 0:
            raise ValueError("GateConfig: spike_z_threshold and price_scale_log_threshold must be positive")
        if self.stale_min_minutes < 2:
            raise ValueError(f"GateConfig: stale_min_minutes {self.stale_min_minutes} must be at least 2")
        if not 0.0 <= self.completeness_min_coverage <= 1.0:
            raise ValueError("GateConfig: completeness_min_coverage must lie in [0, 1]")
        if self.max_evidence < 0:
            raise ValueError("GateConfig: max_evidence must not be negative")


#: The defaults, shared (``GateConfig`` is frozen, so one instance is safe as a default argument).
DEFAULT_CONFIG = GateConfig()


@dataclass(frozen=True)
class MissingBars:
    """Missing bars of ``symbol`` (``"*"``: every symbol, a market-wide gap) labelled in [start, end).

    ``end`` is exclusive (the minute after the last missing bar), so the window is directly a backfill range;
    ``missing_minutes`` counts trading minutes only (a window may straddle a lunch break).
    """

    symbol: str
    start: dt.datetime
    end: dt.datetime
    missing_minutes: int

    def to_dict(self) -> dict:
        return {
            "symbol": self.symbol,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "missing_minutes": int(self.missing_minutes),
        }


def jsonable(value):
    """A JSON-safe copy of ``value``: ISO timestamps, non-finite floats as strings, numpy scalars unboxed."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, int):
        return value
    return str(value)


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate on one partition.

    ``evaluated`` is False when the gate could not run: its inputs were not given (it then passes, e.g.
    freshness without a deadline) or the frame failed the schema in a column it needs (it then fails with a
    summary starting "not evaluated: schema failed").
    """

    gate: str
    passed: bool
    blocking: bool
    summary: str
    counts: dict[str, int | float] = field(default_factory=dict)
    evidence: list[dict] = field(default_factory=list)
    gap_windows: list[MissingBars] = field(default_factory=list)
    evaluated: bool = True

    @property
    def severity(self) -> str:
        """Dagster's vocabulary: ERROR for a failed blocking gate, WARN for a failed advisory one."""
        return "ERROR" if self.blocking else "WARN"

    def to_metadata(self) -> dict:
        """JSON-able metadata for the asset check (gap windows capped; the full list stays on the result)."""
        meta = {
            "gate": self.gate,
            "passed": self.passed,
            "blocking": self.blocking,
            "evaluated": self.evaluated,
            "summary": self.summary,
            "counts": jsonable(self.counts),
            "evidence": jsonable(self.evidence),
        }
        if self.gap_windows or self.gate == COMPLETENESS:
            meta["gap_windows"] = [w.to_dict() for w in self.gap_windows[:MAX_METADATA_GAP_WINDOWS]]
            meta["gap_windows_total"] = len(self.gap_windows)
        json.dumps(meta)  # fail here, not in Dagster, if something slipped through
        return meta
