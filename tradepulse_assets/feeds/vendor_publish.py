"""The simulator publishing as real vendors do: a Databento batch job, minute-aggregate flat files, or a
delivery described by a ``mapped`` vendor table; so every vendor path is tested end to end.

Why reuse the publisher's plans: the bars, and the damage of a fault scenario, are decided once per session
(``Publisher.plan``) whatever the format, so the same seed gives the same bars in our drop format and in a
vendor's, and a test can demand production bars identical to the bit. Vendor faults are the catalogue's
kinds (``scenarios.VENDOR_FAULTS``): ``stall`` leaves the day file out, ``condition_degraded`` marks the day
in ``condition.json``, byte faults damage the vendor file after its hash went into the job manifest, and
``symbology_gap`` drops instruments from ``symbology.json`` for the day. Restatements are published in our
drop format only.
"""

import datetime as dt
import zlib

import polars as pl

from tradepulse_assets.feeds import databento, flatfiles
from tradepulse_assets.feeds.formats import render_path, session_window
from tradepulse_assets.feeds.mapping import encode_mapped, parse_mapping
from tradepulse_assets.feeds.publisher import (
    BATCH_LATENCY,
    Publisher,
    PublishResult,
    write_ground_truth,
)
from tradepulse_assets.feeds.scenarios import SessionPlan, apply_byte_faults, resolve_rows, strip
from tradepulse_assets.feeds.sources import format_options
from tradepulse_assets.markets.registry import VendorSpec
from tradepulse_assets.storage.object_store import ObjectStore

INSTRUMENT_ID_BASE = 1000
RENUMBERED_ID_BASE = 50_000  # an instrument id a symbol moves to mid-range (see ``instrument_changes``)


def _result(plan: SessionPlan, status: str, files: int = 0, records: int = 0) -> PublishResult:
    return PublishResult(
        plan.market.market_id,
        plan.session,
        status,
        1,
        files,
        records,
        plan.condition,
        None,
        [d.kind for d in plan.damages],
    )


def _bars(plan: SessionPlan) -> pl.DataFrame:
    resolve_rows(plan, plan.frame, 1)
    return strip(plan.frame)


def _session_day(plan: SessionPlan) -> dt.date:
    return session_window(plan.market, plan.session)[0].date()


def _publish_day_files(
    publisher: Publisher, dest: ObjectStore, market_id: str, sessions: list[dt.date], folder: str, encode
) -> list[PublishResult]:
    """One file per session (``encode(plan, bars) -> (relative path, bytes)``), stalled sessions left out.

    These formats carry no condition (a day's file is there or it is not), so a fault that sets one
    (``condition_degraded``, ``condition_pending``) cannot be rehearsed in them: refused, never dropped
    silently.
    """
    results = []
    for session in sessions:
        plan = publisher.plan(market_id, session)
        if plan.condition != "available":
            raise ValueError(
                f"{market_id} {session}: condition {plan.condition!r} cannot be published in a per-day file "
                "format (flat files and mapped deliveries carry no condition; use the drop or Databento "
                "format)"
            )
        if plan.stall_at is not None:
            results.append(_result(plan, "stalled"))
        else:
            bars = _bars(plan)
            path, data = encode(plan, bars)
            name = path.rsplit("/", 1)[-1]
            stored = apply_byte_faults(plan, {name: data})[name]
            dest.put_bytes(f"{folder}/{path}", stored)
            results.append(_result(plan, "published", 1, bars.height))
        write_ground_truth(dest, plan, [s.name for s in publisher.scenarios])
    return results


def publish_flat_files(
    publisher: Publisher,
    dest: ObjectStore,
    market_id: str,
    sessions: list[dt.date],
    path: str = flatfiles.DEFAULT_PATH,
) -> list[PublishResult]:
    """Per-day ``.csv.gz`` minute aggregates under ``<market>/`` (flat files carry no condition)."""
    market = publisher.market(market_id)
    return _publish_day_files(
        publisher,
        dest,
        market_id,
        sessions,
        market_id,
        lambda plan, bars: (render_path(path, market, plan.session), flatfiles.encode_minute_aggs(bars)),
    )


def publish_mapped(
    publisher: Publisher, dest: ObjectStore, spec: VendorSpec, market_id: str, sessions: list[dt.date]
) -> list[PublishResult]:
    """One file per session as the ``mapped`` vendor table ``spec`` describes it, under ``<market>/``."""
    mapping = parse_mapping(format_options(spec), f"[vendors.{spec.name}]")
    market = publisher.market(market_id)

    def encode(plan, bars):
        path = render_path(mapping.file, market, plan.session)
        return path, encode_mapped(mapping, path, bars)

    return _publish_day_files(publisher, dest, market_id, sessions, market_id, encode)


def _intervals(
    symbols: list[str], start: dt.date, end: dt.date, changes: dict[str, dt.date]
) -> list[databento.SymbolInterval]:
    """Each symbol's instrument id over [start, end); a symbol in ``changes`` gets a new id from that date."""
    out = []
    for i, symbol in enumerate(symbols):
        first = INSTRUMENT_ID_BASE + i
        switch = changes.get(symbol)
        if switch is not None and start < switch < end:
            out += [
                databento.SymbolInterval(first, start, switch, symbol),
                databento.SymbolInterval(RENUMBERED_ID_BASE + i, switch, end, symbol),
            ]
        else:
            out.append(databento.SymbolInterval(first, start, end, symbol))
    return out


def _without(intervals, symbols: set[str], day: dt.date) -> list[databento.SymbolInterval]:
    """``intervals`` with ``symbols`` unmapped on ``day`` (a symbology gap)."""
    out = []
    for iv in intervals:
        if iv.symbol not in symbols or not iv.start <= day < iv.end:
            out.append(iv)
            continue
        if iv.start < day:
            out.append(databento.SymbolInterval(iv.instrument_id, iv.start, day, iv.symbol))
        if day + dt.timedelta(days=1) < iv.end:
            out.append(
                databento.SymbolInterval(iv.instrument_id, day + dt.timedelta(days=1), iv.end, iv.symbol)
            )
    return out


def _midnight_ns(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) * 1_000_000_000


def job_id_for(dataset: str, market_id: str, sessions: list[dt.date], seed: int) -> str:
    """Databento-like ``<DATASET>-<YYYYMMDD>-<10 chars>``, reproducible from what the job holds."""
    digest = zlib.crc32(f"{market_id}:{sessions[0]}:{sessions[-1]}:{seed}".encode())
    code = "".join("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[(digest >> (3 * i)) % 32] for i in range(10))
    return f"{dataset.split('.')[0]}-{sessions[0]:%Y%m%d}-{code}"


def publish_databento_job(
    publisher: Publisher,
    dest: ObjectStore,
    market_id: str,
    sessions: list[dt.date],
    dataset: str = "XNAS.ITCH",
    job_id: str | None = None,
    instrument_changes: dict[str, dt.date] | None = None,
) -> tuple[str, list[PublishResult]]:
    """One batch job over ``sessions`` under ``<market>/<job id>/``, every file written by databento-dbn.

    ``instrument_changes`` {symbol: date}: the symbol's instrument id changes on that date (symbology.json
    maps it to two ids), as Databento renumbers instruments; decoding must still give the same bars.
    """
    market = publisher.market(market_id)
    days = [session_window(market, s)[0].date() for s in sessions]
    start, end = days[0], days[-1] + dt.timedelta(days=1)
    plans = [publisher.plan(market_id, s) for s in sessions]
    symbols = sorted(set().union(*(set(p.frame["symbol"].unique()) for p in plans)))
    intervals = _intervals(symbols, start, end, instrument_changes or {})
    job_id = job_id or job_id_for(dataset, market_id, sessions, publisher.seed)
    hashed, stored, conditions, results, done = {}, {}, [], [], None
    for plan, day in zip(plans, days):
        conditions.append(
            {"date": day.isoformat(), "condition": plan.condition, "last_modified_date": day.isoformat()}
        )
        gaps = {s for d in plan.damages if d.kind == "symbology_gap" for s in d.symbols}
        intervals = _without(intervals, gaps, day) if gaps else intervals
        if plan.stall_at is not None:  # the missing day file
            results.append(_result(plan, "stalled"))
            write_ground_truth(dest, plan, [s.name for s in publisher.scenarios])
            continue
        bars = _bars(plan)
        ids = {
            iv.symbol: iv.instrument_id
            for iv in _intervals(symbols, start, end, instrument_changes or {})
            if iv.start <= day < iv.end
        }
        name = databento.day_file_name(dataset, day)
        hashed[name] = databento.encode_ohlcv(dataset, day, bars, ids)
        stored[name] = apply_byte_faults(plan, {name: hashed[name]})[name]
        close = session_window(market, plan.session)[1] + BATCH_LATENCY + plan.delay
        done = max(filter(None, (done, close)))
        results.append(_result(plan, "published", 1, bars.height))
        write_ground_truth(dest, plan, [s.name for s in publisher.scenarios])
    support = {
        databento.METADATA: {
            "id": job_id,
            "dataset": dataset,
            "schema": databento.SCHEMA,
            "symbols": ",".join(symbols),
            "stype_in": "raw_symbol",
            "stype_out": "instrument_id",
            "start": _midnight_ns(start),
            "end": _midnight_ns(end),
            "encoding": "dbn",
            "compression": "zstd",
            "split_duration": "day",
            "state": "done",
            "ts_process_done": (done or dt.datetime.combine(end, dt.time(), dt.timezone.utc))
            .isoformat()
            .replace("+00:00", "Z"),
        },
        databento.CONDITION: conditions,
        databento.SYMBOLOGY: databento.symbology_doc(intervals, start, end),
    }
    support_bytes = {name: databento.dumps(doc) for name, doc in support.items()}
    folder = f"{market_id}/{job_id}"
    manifest = [
        databento.manifest_entry(n, d, f"https://api.databento.com/v0/batch/download/SIM/{job_id}")
        for n, d in sorted({**hashed, **support_bytes}.items())
    ]
    for name, data in {**stored, **support_bytes}.items():
        dest.put_bytes(f"{folder}/{name}", data)
    dest.put_bytes(f"{folder}/{databento.MANIFEST}", databento.dumps(manifest))  # last: the job is complete
    return job_id, results


def publish_vendor(
    publisher: Publisher,
    dest: ObjectStore,
    spec: VendorSpec,
    market_id: str,
    sessions: list[dt.date],
    **kwargs,
) -> list[PublishResult]:
    """Publish ``sessions`` of a market in ``spec``'s format (the one entry point the CLI uses)."""
    if spec.format == "databento":
        return publish_databento_job(
            publisher, dest, market_id, sessions, dataset=spec.options.get("dataset", "XNAS.ITCH"), **kwargs
        )[1]
    if spec.format == "flat_minute_aggs":
        return publish_flat_files(
            publisher,
            dest,
            market_id,
            sessions,
            flatfiles.check_options(format_options(spec), spec.name)["path"],
        )
    if spec.format == "mapped":
        return publish_mapped(publisher, dest, spec, market_id, sessions)
    raise ValueError(f"vendor {spec.name!r}: the simulator publishes the drop format with Publisher itself")
