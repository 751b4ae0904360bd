"""Declarative fault scenarios applied at publish time, each returning the exact damage it did.

Why ground truth: a gate that "fails on something" proves little. Every fault here records a ``Damage``
(kind, market, session, files, the exact minutes / symbols / row positions it touched, and the gate that
should catch it), and the publisher writes these records beside the drop (``_ground_truth/``, outside the
vendor-visible layout). Tests and chaos replays then score detection exactly: right gate, right rows.

A scenario is YAML (or dicts):
``{name, description, faults: [{kind, market, session | sessions, ...params}]}``.
Packaged scenarios live in ``vendor/scenarios/*.yaml`` and are addressed by name. Every random choice a fault
makes (which symbols, which minutes, which bytes) draws from a seed derived from (seed, market, session,
kind, position in the scenario), so a scenario replays identically.

Row positions in a ``Damage`` index the session as published: the files of the manifest concatenated in
manifest order (for a restatement: the new revision's files).
"""

import copy
import datetime as dt
import zlib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from tradepulse_assets.markets import Market, calendar_for

ROW_ID = "__rid"
BATCH = "__batch"  # the true UTC minute whose micro-batch delivers the row
PRICE_COLUMNS = ("open", "high", "low", "close")

# stage: frame (changes bars before files are cut), bytes (after the manifest is computed), publication
KINDS: dict[str, dict[str, Any]] = {
    "stall": dict(
        stage="publication",
        gate="freshness",
        description="publication stops at a minute of the session: later micro-batches (or, for a batch "
        "vendor, the whole session) never arrive",
        example={"kind": "stall", "market": "XHKG", "session": "2026-03-10", "at_minute": 120},
    ),
    "delay": dict(
        stage="publication",
        gate="freshness",
        description="published N minutes later than usual (published_at and availability shift)",
        example={"kind": "delay", "market": "XNYS", "session": "2026-03-10", "minutes": 45},
    ),
    "condition_pending": dict(
        stage="publication",
        gate="freshness",
        description="the manifest keeps condition 'pending' after the session closed",
        example={"kind": "condition_pending", "market": "XLON", "session": "2026-03-10"},
    ),
    "condition_degraded": dict(
        stage="publication",
        gate="manifest_reconciliation",
        description="the vendor flags the session 'degraded' in its manifest",
        example={"kind": "condition_degraded", "market": "XLON", "session": "2026-03-10"},
    ),
    "checksum_corruption": dict(
        stage="bytes",
        gate="landing_verification",
        description="bytes of one file flipped after the manifest was computed "
        "(size unchanged, sha256 differs)",
        example={"kind": "checksum_corruption", "market": "XNYS", "session": "2026-03-10", "bytes": 4},
    ),
    "truncated_file": dict(
        stage="bytes",
        gate="landing_verification",
        description="one file cut short after the manifest was computed",
        example={"kind": "truncated_file", "market": "XNYS", "session": "2026-03-10", "keep_fraction": 0.5},
    ),
    "schema_mismatch": dict(
        stage="frame",
        gate="schema",
        description="a column renamed, missing or retyped (mode: rename | missing | retype)",
        example={
            "kind": "schema_mismatch",
            "market": "XNYS",
            "session": "2026-03-10",
            "mode": "rename",
            "column": "volume",
            "to": "vol",
        },
    ),
    "gap_window": dict(
        stage="frame",
        gate="completeness",
        description="a window of minutes missing (for all symbols unless 'symbols' is given)",
        example={
            "kind": "gap_window",
            "market": "XNYS",
            "session": "2026-03-10",
            "at_minute": 60,
            "minutes": 15,
        },
    ),
    "duplicate_bars": dict(
        stage="frame",
        gate="duplicate_bars",
        description="some bars delivered twice (exact copies)",
        example={"kind": "duplicate_bars", "market": "XNYS", "session": "2026-03-10", "count": 10},
    ),
    "out_of_order": dict(
        stage="frame",
        gate="monotonic_timestamps",
        description="some bars arrive late, after bars of later minutes (lag minutes)",
        example={"kind": "out_of_order", "market": "XHKG", "session": "2026-03-10", "count": 5, "lag": 3},
    ),
    "price_scale": dict(
        stage="frame",
        gate="price_spikes",
        description="prices of some symbols multiplied by a factor (x100: cents vs units) in a window",
        example={
            "kind": "price_scale",
            "market": "XNYS",
            "session": "2026-03-10",
            "factor": 100,
            "symbols": 1,
            "at_minute": 200,
            "minutes": 10,
        },
    ),
    "ohlc_violation": dict(
        stage="frame",
        gate="ohlc_consistency",
        description="high below max(open, close) on some bars",
        example={"kind": "ohlc_violation", "market": "XNYS", "session": "2026-03-10", "count": 5},
    ),
    "stale_prices": dict(
        stage="frame",
        gate="stale_prices",
        description="a symbol's prices frozen flat for a window of minutes",
        example={
            "kind": "stale_prices",
            "market": "XLON",
            "session": "2026-03-10",
            "symbols": 1,
            "minutes": 45,
        },
    ),
    "negative_volume": dict(
        stage="frame",
        gate="negative_volume",
        description="volume negated on some bars",
        example={"kind": "negative_volume", "market": "CRYPTO", "session": "2026-03-10", "count": 3},
    ),
    "local_timestamps": dict(
        stage="frame",
        gate="calendar_alignment",
        description="timestamps in exchange local time labelled UTC (the DST trap)",
        example={"kind": "local_timestamps", "market": "XNYS", "session": "2026-03-09"},
    ),
    "restatement": dict(
        stage="frame",
        gate="manifest_reconciliation",
        description="session republished as a new revision with changed closes for some symbols",
        example={
            "kind": "restatement",
            "market": "XNYS",
            "session": "2026-03-10",
            "symbols": 2,
            "pct": 0.5,
            "after_minutes": 90,
        },
    ),
    "symbology_gap": dict(
        stage="vendor",
        gate="landing_verification",
        description="(formats with a symbology file: Databento) some instruments have no symbol on the "
        "session's date, so their records cannot be attributed; the drop format has no symbology to damage",
        example={"kind": "symbology_gap", "market": "XNYS", "session": "2026-03-10", "symbols": 1},
    ),
}

# Faults real vendors show, as the catalogue kinds the simulator uses to rehearse them (docs/vendors.md).
VENDOR_FAULTS = {
    "degraded day (Databento condition.json)": "condition_degraded",
    "missing day file": "stall",
    "hash mismatch (job manifest.json sha256)": "checksum_corruption",
    "corrupt or truncated day file": "truncated_file",
    "symbology gap (instrument without a symbol)": "symbology_gap",
}


class ScenarioError(ValueError):
    """A scenario file or entry that cannot be used; names the file and the entry."""


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    market: str | None = None  # None: every market
    start: dt.date | None = None  # session range, inclusive; None: open-ended
    end: dt.date | None = None
    params: dict = field(default_factory=dict)
    index: int = 0  # position in its scenario (part of the seed)

    def matches(self, market_id: str, session: dt.date) -> bool:
        return (
            (self.market is None or self.market == market_id)
            and (self.start is None or session >= self.start)
            and (self.end is None or session <= self.end)
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    faults: tuple[FaultSpec, ...]


@dataclass
class Damage:
    kind: str
    market: str
    session: dt.date
    gate: str
    scope: str  # rows | file | session
    files: list[str] = field(default_factory=list)
    minutes: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    revision: int = 1
    row_ids: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("row_ids")
        out["session"] = self.session.isoformat()
        return out


@dataclass
class SessionPlan:
    """Everything the publisher needs for one session, with the faults already decided."""

    market: Market
    session: dt.date
    seed: int
    frame: pl.DataFrame  # carries ROW_ID and BATCH, kept sorted by BATCH (the published order)
    condition: str = "available"
    delay: dt.timedelta = dt.timedelta(0)
    stall_at: dt.datetime | None = None
    restated: pl.DataFrame | None = None
    restate_after: dt.timedelta = dt.timedelta(minutes=90)
    byte_faults: list[tuple[FaultSpec, np.random.Generator]] = field(default_factory=list)
    damages: list[Damage] = field(default_factory=list)

    def damage(self, spec: FaultSpec, scope: str, **kw) -> Damage:
        d = Damage(
            kind=spec.kind,
            market=self.market.market_id,
            session=self.session,
            gate=KINDS[spec.kind]["gate"],
            scope=scope,
            **kw,
        )
        self.damages.append(d)
        return d


# --- loading ------------------------------------------------------------------------------------------


def _date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is not a YYYY-MM-DD date") from None


def fault_from_dict(raw: dict, where: str, index: int = 0) -> FaultSpec:
    if not isinstance(raw, dict) or "kind" not in raw:
        raise ScenarioError(f"{where}: a fault needs at least a 'kind'")
    kind = raw["kind"]
    if kind not in KINDS:
        raise ScenarioError(f"{where}: unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    params = {k: v for k, v in raw.items() if k not in ("kind", "market", "session", "sessions")}
    start = end = None
    if "session" in raw:
        start = end = _date(raw["session"], f"{where} session")
    elif "sessions" in raw:
        window = raw["sessions"]
        if not isinstance(window, dict):
            raise ScenarioError(f"{where}: 'sessions' must be {{start: D, end: D}}")
        start, end = (
            _date(window.get("start"), f"{where} sessions.start"),
            _date(window.get("end"), f"{where} sessions.end"),
        )
    market = raw.get("market")
    return FaultSpec(kind, None if market in (None, "*") else str(market), start, end, params, index)


def scenario_from_dict(doc: dict, source: str) -> Scenario:
    if not isinstance(doc, dict) or not isinstance(doc.get("faults"), list):
        raise ScenarioError(f"scenario {source}: expected a mapping with a 'faults' list")
    faults = tuple(
        fault_from_dict(raw, f"scenario {source} fault #{i}", i) for i, raw in enumerate(doc["faults"])
    )
    return Scenario(str(doc.get("name", Path(source).stem)), str(doc.get("description", "")), faults)


def packaged_scenarios() -> dict[str, str]:
    """Name -> YAML text of the scenarios shipped in ``vendor/scenarios/``."""
    folder = resources.files("tradepulse_assets.feeds").joinpath("scenarios")
    return {p.name.removesuffix(".yaml"): p.read_text() for p in folder.iterdir() if p.name.endswith(".yaml")}


def load_scenario(file_or_name: str | Path) -> Scenario:
    """A scenario from a YAML file path, or a packaged scenario by name."""
    path = Path(file_or_name)
    if path.is_file():
        text, source = path.read_text(), str(path)
    else:
        packaged = packaged_scenarios()
        if str(file_or_name) not in packaged:
            raise ScenarioError(
                f"scenario {file_or_name!r}: no such file and no packaged scenario of that name "
                f"(packaged: {', '.join(sorted(packaged))})"
            )
        text, source = packaged[str(file_or_name)], f"packaged:{file_or_name}"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {source}: not valid YAML ({exc})") from None
    return scenario_from_dict(doc, source)


def catalogue() -> list[dict]:
    """Every fault kind with its description, the gate expected to catch it, its stage and an example."""
    return [
        {
            "kind": k,
            "gate": v["gate"],
            "stage": v["stage"],
            "description": v["description"],
            "example": v["example"],
        }
        for k, v in KINDS.items()
    ]


# --- planning -----------------------------------------------------------------------------------------


def fault_rng(seed: int, spec: FaultSpec, market_id: str, session: dt.date) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(
            [
                int(seed),
                zlib.crc32(market_id.encode()),
                session.toordinal(),
                zlib.crc32(spec.kind.encode()),
                spec.index,
            ]
        )
    )


def prepare_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the bookkeeping columns (row id, delivering minute); the frame must be sorted by ts."""
    return frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID), pl.col("ts").alias(BATCH))


def strip(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop([c for c in (ROW_ID, BATCH) if c in frame.columns])


def plan_session(
    market: Market,
    session: dt.date,
    frame: pl.DataFrame,
    seed: int,
    faults: tuple[FaultSpec, ...] | list[FaultSpec] = (),
) -> SessionPlan:
    """Apply the frame and publication faults matching (market, session); byte faults are queued."""
    plan = SessionPlan(market, session, seed, prepare_frame(frame))
    for spec in faults:
        if not spec.matches(market.market_id, session):
            continue
        rng = fault_rng(seed, spec, market.market_id, session)
        stage = KINDS[spec.kind]["stage"]
        if stage == "bytes":
            plan.byte_faults.append((spec, rng))
        else:
            _APPLY[spec.kind](plan, spec, rng)
    return plan


def _minutes(plan: SessionPlan) -> np.ndarray:
    return calendar_for(plan.market.market_id, plan.market.calendar).minutes(plan.session)


def _iso(values) -> list[str]:
    return [np.datetime_as_string(np.datetime64(v, "m"), unit="m") + "Z" for v in values]


def _window(plan: SessionPlan, spec: FaultSpec, rng: np.random.Generator, default_len: int) -> np.ndarray:
    """The expected minutes a fault covers: ``at_minute`` (offset into the session) or ``at`` (HH:MM UTC)."""
    minutes = _minutes(plan)
    length = max(1, min(int(spec.params.get("minutes", default_len)), minutes.size))
    if "at" in spec.params:
        hh, mm = map(int, str(spec.params["at"]).split(":"))
        target = np.datetime64(dt.datetime.combine(plan.session, dt.time(hh, mm)), "us")
        start = int(np.searchsorted(minutes, target))
    elif "at_minute" in spec.params:
        start = int(spec.params["at_minute"])
    else:
        start = int(rng.integers(0, max(1, minutes.size - length)))
    start = min(max(start, 0), minutes.size - length)
    return minutes[start : start + length]


def _symbols(plan: SessionPlan, spec: FaultSpec, rng: np.random.Generator, default) -> list[str]:
    universe = plan.frame["symbol"].unique(maintain_order=True).to_list()
    chosen = spec.params.get("symbols", default)
    if chosen == "all" or chosen is None:
        return universe
    if isinstance(chosen, list):
        unknown = set(chosen) - set(universe)
        if unknown:
            raise ScenarioError(
                f"fault {spec.kind} for {plan.market.market_id}: unknown symbols {sorted(unknown)}"
            )
        return list(chosen)
    count = max(1, min(int(chosen), len(universe)))
    return sorted(rng.choice(universe, size=count, replace=False).tolist())


def _ts_in(minutes: np.ndarray) -> pl.Expr:
    series = pl.Series(minutes).dt.replace_time_zone("UTC")
    return pl.col("ts").is_in(series.implode())


def _pick_rows(
    plan: SessionPlan, rng: np.random.Generator, count: int, where: pl.Expr | None = None
) -> list[int]:
    candidates = plan.frame.filter(where) if where is not None else plan.frame
    ids = candidates[ROW_ID].to_numpy()
    count = max(1, min(int(count), ids.size))
    return sorted(rng.choice(ids, size=count, replace=False).tolist())


def _rows_damage(
    plan: SessionPlan, spec: FaultSpec, row_ids: list[int], frame: pl.DataFrame | None = None, **kw
) -> Damage:
    frame = plan.frame if frame is None else frame
    hit = frame.filter(pl.col(ROW_ID).is_in(row_ids))
    return plan.damage(
        spec,
        "rows",
        row_ids=list(row_ids),
        minutes=sorted(set(_iso(hit["ts"].dt.replace_time_zone(None).to_numpy()))),
        symbols=sorted(set(hit["symbol"].to_list())),
        **kw,
    )


def _update(plan: SessionPlan, row_ids: list[int], **exprs: pl.Expr) -> None:
    mask = pl.col(ROW_ID).is_in(row_ids)
    plan.frame = plan.frame.with_columns(
        [pl.when(mask).then(e).otherwise(pl.col(c)).alias(c) for c, e in exprs.items()]
    )


# --- fault implementations ----------------------------------------------------------------------------


def _stall(plan, spec, rng):
    window = _window(plan, spec, rng, 1)
    plan.stall_at = window[0].astype(dt.datetime).replace(tzinfo=dt.timezone.utc)
    lost = _minutes(plan)[_minutes(plan) >= window[0]]
    plan.damage(spec, "session", minutes=_iso(lost), details={"stall_at": plan.stall_at.isoformat()})


def _delay(plan, spec, rng):
    minutes = int(spec.params.get("minutes", 30))
    plan.delay += dt.timedelta(minutes=minutes)
    plan.damage(spec, "session", details={"delay_minutes": minutes})


def _condition(value):
    def apply(plan, spec, rng):
        plan.condition = value
        plan.damage(spec, "session", details={"condition": value})

    return apply


def _symbology_gap(plan, spec, rng):
    """Only recorded here: a vendor encoder with symbology (``feeds/vendor_publish.py``) leaves these out."""
    symbols = _symbols(plan, spec, rng, 1)
    plan.damage(spec, "file", symbols=symbols, details={"symbols": symbols})


def _schema_mismatch(plan, spec, rng):
    mode = spec.params.get("mode", "rename")
    column = spec.params.get("column", "volume")
    if column not in plan.frame.columns or column in (ROW_ID, BATCH):
        raise ScenarioError(f"fault schema_mismatch: no column {column!r} to damage")
    if mode == "rename":
        to = spec.params.get("to", f"{column}_")
        plan.frame = plan.frame.rename({column: to})
        details = {"mode": mode, "column": column, "to": to}
    elif mode == "missing":
        plan.frame = plan.frame.drop(column)
        details = {"mode": mode, "column": column}
    elif mode == "retype":
        plan.frame = plan.frame.with_columns(pl.col(column).cast(pl.String))
        details = {"mode": mode, "column": column, "to_type": "String"}
    else:
        raise ScenarioError(f"fault schema_mismatch: mode {mode!r} is not rename, missing or retype")
    plan.damage(spec, "session", details=details)


def _gap_window(plan, spec, rng):
    window = _window(plan, spec, rng, 15)
    symbols = _symbols(plan, spec, rng, "all")
    drop = _ts_in(window) & pl.col("symbol").is_in(symbols)
    removed = plan.frame.filter(drop).height
    plan.frame = plan.frame.filter(~drop)
    plan.damage(
        spec, "rows", minutes=_iso(window), symbols=sorted(symbols), details={"removed_rows": removed}
    )


def _resort(plan):
    plan.frame = plan.frame.sort(BATCH, maintain_order=True)


def _duplicate_bars(plan, spec, rng):
    ids = _pick_rows(plan, rng, spec.params.get("count", 10))
    next_id = int(plan.frame[ROW_ID].max()) + 1
    copies = plan.frame.filter(pl.col(ROW_ID).is_in(ids)).with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + next_id).alias(ROW_ID)
    )
    plan.frame = pl.concat([plan.frame, copies])
    _resort(plan)
    _rows_damage(plan, spec, copies[ROW_ID].to_list(), details={"duplicated_row_ids": ids})


def _out_of_order(plan, spec, rng):
    lag = max(1, int(spec.params.get("lag", 3)))
    minutes = _minutes(plan)
    movable = pl.Series(minutes[:-lag]).dt.replace_time_zone("UTC").implode()
    ids = _pick_rows(plan, rng, spec.params.get("count", 5), pl.col("ts").is_in(movable))
    index = {m: i for i, m in enumerate(minutes.tolist())}
    moved = plan.frame.filter(pl.col(ROW_ID).is_in(ids))
    late = np.array(
        [minutes[index[ts.replace(tzinfo=None)] + lag] for ts in moved["ts"]], dtype="datetime64[us]"
    )
    mapping = pl.DataFrame({ROW_ID: moved[ROW_ID], "__late": pl.Series(late).dt.replace_time_zone("UTC")})
    plan.frame = (
        plan.frame.join(mapping, on=ROW_ID, how="left", maintain_order="left")
        .with_columns(pl.coalesce("__late", BATCH).alias(BATCH))
        .drop("__late")
    )
    _resort(plan)
    _rows_damage(plan, spec, ids, details={"lag_minutes": lag})


def _price_scale(plan, spec, rng):
    factor = float(spec.params.get("factor", 100))
    window = _window(plan, spec, rng, 10)
    symbols = _symbols(plan, spec, rng, 1)
    ids = plan.frame.filter(_ts_in(window) & pl.col("symbol").is_in(symbols))[ROW_ID].to_list()
    cols = [c for c in (*PRICE_COLUMNS, "vwap") if c in plan.frame.columns]
    _update(plan, ids, **{c: pl.col(c) * factor for c in cols})
    _rows_damage(plan, spec, ids, details={"factor": factor})


def _ohlc_violation(plan, spec, rng):
    ids = _pick_rows(plan, rng, spec.params.get("count", 5))
    _update(plan, ids, high=pl.min_horizontal("open", "close") * 0.99)
    _rows_damage(plan, spec, ids)


def _stale_prices(plan, spec, rng):
    window = _window(plan, spec, rng, 45)
    symbols = _symbols(plan, spec, rng, 1)
    hit = plan.frame.filter(_ts_in(window) & pl.col("symbol").is_in(symbols))
    first = hit.group_by("symbol").agg(pl.col("close").sort_by("ts").first().alias("__flat"))
    ids = hit[ROW_ID].to_list()
    plan.frame = plan.frame.join(first, on="symbol", how="left", maintain_order="left")
    cols = [c for c in (*PRICE_COLUMNS, "vwap") if c in plan.frame.columns]
    _update(plan, ids, **{c: pl.col("__flat") for c in cols})
    plan.frame = plan.frame.drop("__flat")
    _rows_damage(plan, spec, ids)


def _negative_volume(plan, spec, rng):
    ids = _pick_rows(plan, rng, spec.params.get("count", 3))
    _update(plan, ids, volume=-pl.col("volume").abs() - 1.0)
    _rows_damage(plan, spec, ids)


def _market_tz(plan) -> str:
    # exchange-calendars knows each exchange's zone; the markets layer does not re-export it yet
    return str(getattr(calendar_for(plan.market.market_id, plan.market.calendar)._cal, "tz", "UTC"))


def _local_timestamps(plan, spec, rng):
    tz = _market_tz(plan)
    plan.frame = plan.frame.with_columns(
        pl.col("ts").dt.convert_time_zone(tz).dt.replace_time_zone(None).dt.replace_time_zone("UTC")
    )
    plan.damage(
        spec,
        "session",
        minutes=_iso(_minutes(plan)),
        symbols=sorted(set(plan.frame["symbol"])),
        details={"time_zone": tz},
    )


def _restatement(plan, spec, rng):
    window = _window(plan, spec, rng, int(spec.params.get("minutes", 30)))
    symbols = _symbols(plan, spec, rng, 2)
    pct = float(spec.params.get("pct", 0.5)) / 100.0
    plan.restate_after = dt.timedelta(minutes=int(spec.params.get("after_minutes", 90)))
    mask = _ts_in(window) & pl.col("symbol").is_in(symbols)
    ids = plan.frame.filter(mask)[ROW_ID].to_list()
    close = pl.when(mask).then((pl.col("close") * (1 + pct)).round(4)).otherwise(pl.col("close"))
    restated = plan.frame.with_columns(close.alias("close"))
    restated = restated.with_columns(
        pl.max_horizontal("high", "close").alias("high"), pl.min_horizontal("low", "close").alias("low")
    )
    plan.restated = restated
    _rows_damage(plan, spec, ids, frame=restated, revision=2, details={"pct": pct * 100})


_APPLY = {
    "stall": _stall,
    "delay": _delay,
    "condition_pending": _condition("pending"),
    "condition_degraded": _condition("degraded"),
    "schema_mismatch": _schema_mismatch,
    "gap_window": _gap_window,
    "duplicate_bars": _duplicate_bars,
    "out_of_order": _out_of_order,
    "price_scale": _price_scale,
    "ohlc_violation": _ohlc_violation,
    "stale_prices": _stale_prices,
    "negative_volume": _negative_volume,
    "local_timestamps": _local_timestamps,
    "restatement": _restatement,
    "symbology_gap": _symbology_gap,
}


# --- byte faults and ground truth ---------------------------------------------------------------------


def apply_byte_faults(
    plan: SessionPlan, files: dict[str, bytes], candidates: list[str] | None = None
) -> dict[str, bytes]:
    """Damage file bytes after the manifest was computed from the originals; records the damage.

    The target file is drawn from ``candidates`` (every file the session will have; default: ``files``), so a
    stream publishing one minute at a time damages the same file as a one-shot publication would. A fault
    whose target is not among ``files`` stays queued for a later call.
    """
    if not plan.byte_faults or not files:
        return files
    files = dict(files)
    names = sorted(candidates if candidates is not None else files)
    pending = []
    for spec, rng in plan.byte_faults:
        name = spec.params.get("file") or names[int(copy.deepcopy(rng).integers(0, len(names)))]
        if name not in files:
            pending.append((spec, rng))
            continue
        rng.integers(0, len(names))  # consume the draw that chose the file
        data = bytearray(files[name])
        if spec.kind == "checksum_corruption":
            count = max(1, min(int(spec.params.get("bytes", 4)), len(data)))
            lo, hi = len(data) // 4, max(len(data) // 4 + count, 3 * len(data) // 4)
            offsets = sorted(rng.choice(np.arange(lo, hi), size=count, replace=False).tolist())
            for off in offsets:
                data[off] ^= 0xFF
            details = {"offsets": offsets, "size": len(data)}
        else:  # truncated_file
            keep = int(len(data) * float(spec.params.get("keep_fraction", 0.5)))
            details = {"original_size": len(data), "truncated_size": keep}
            data = data[:keep]
        files[name] = bytes(data)
        plan.damage(spec, "file", files=[name], details=details)
    plan.byte_faults = pending  # each fault applies once
    return files


def resolve_rows(plan: SessionPlan, published: pl.DataFrame, revision: int) -> None:
    """Turn row ids into positions in the frame as published (revision ``revision``)."""
    position = {rid: i for i, rid in enumerate(published[ROW_ID].to_list())}
    for d in plan.damages:
        if d.row_ids and d.revision == revision:
            d.rows = sorted(position[r] for r in d.row_ids if r in position)


def ground_truth(plan: SessionPlan, scenario_names: list[str] | tuple[str, ...] = ()) -> dict:
    return {
        "market": plan.market.market_id,
        "session": plan.session.isoformat(),
        "seed": plan.seed,
        "scenarios": list(scenario_names),
        "damages": [d.to_dict() for d in plan.damages],
    }
