"""Databento batch downloads: a job folder as Databento delivers it, read and written with its own library.

A batch job (OHLCV-1m, DBN encoding, zstd, ``split_duration="day"``) arrives as a folder ``<JOB-ID>/`` with
one ``<dataset>-<YYYYMMDD>.ohlcv-1m.dbn.zst`` per UTC day that has data, plus the support files:

- ``manifest.json``: the job's file list, as ``batch.list_files`` answers it: ``[{filename, size,
  hash: "sha256:<hex>", urls}]`` (an object ``{"files": [...]}`` is accepted too);
- ``metadata.json``: the job's details (``id``, ``dataset``, ``schema``, ``start``, ``end``, ``stype_in``,
  ``stype_out``, ``ts_process_done``...);
- ``condition.json``: ``metadata.get_dataset_condition`` for the range: ``[{date, condition,
  last_modified_date}]`` with ``available | degraded | pending | missing``;
- ``symbology.json``: a ``symbology.resolve`` result: ``{result: {raw_symbol: [{d0, d1, s}]}, symbols,
  stype_in, stype_out, start_date, end_date, partial, not_found, message, status}``; ``s`` is the
  instrument id valid on [d0, d1).

Why decode with ``databento-dbn`` and never by hand: DBN versions and record layouts change (v1 -> v3), and
the library upgrades old files on read. Prices are fixed-point integers in 1e-9 units, ``ts_event`` is the
bar start in UTC nanoseconds, and records carry an ``instrument_id``, which maps to a symbol *per date*
(an instrument can change symbol, or a symbol its instrument id, in the middle of a job). zstd integrity is
checked while decompressing (pyarrow): the DBN decoder alone accepts a truncated frame silently.

Databento states no per-file record counts: the count in our translated manifest is what the verified file
decodes to for the session. Its client only *warns* on a checksum mismatch; we quarantine.
"""

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass, field

import databento_dbn as dbn
import numpy as np
import polars as pl

from tradepulse_assets.feeds.blobs import join
from tradepulse_assets.feeds.connectors import VendorNotFound
from tradepulse_assets.feeds.formats import SessionDelivery, VendorFile, session_window
from tradepulse_assets.feeds.manifest import CONDITIONS, BarFileError, ManifestError
from tradepulse_assets.markets import calendar_for

SCHEMA = "ohlcv-1m"
DBN_SUFFIX = f".{SCHEMA}.dbn.zst"
MANIFEST = "manifest.json"
METADATA = "metadata.json"
CONDITION = "condition.json"
SYMBOLOGY = "symbology.json"
SUPPORT_FILES = (METADATA, CONDITION, SYMBOLOGY)
SYMBOLOGY_KEYS = (
    "result",
    "symbols",
    "stype_in",
    "stype_out",
    "start_date",
    "end_date",
    "partial",
    "not_found",
    "message",
    "status",
)
FIXED_PRICE_UNITS = dbn.FIXED_PRICE_SCALE  # 1e9 units per 1.0: divide (exact), never multiply by 1e-9
DEFAULT_PUBLISHER_ID = 1


def day_file_name(dataset: str, day: dt.date) -> str:
    """``XNAS.ITCH`` + 2026-03-09 -> ``xnas-itch-20260309.ohlcv-1m.dbn.zst`` (Databento's naming)."""
    return f"{dataset.lower().replace('.', '-')}-{day:%Y%m%d}{DBN_SUFFIX}"


def _json(name: str, data: bytes, where: str):
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{where}/{name}: not valid JSON ({exc})") from None


# --- symbology -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolInterval:
    instrument_id: int
    start: dt.date  # inclusive
    end: dt.date  # exclusive
    symbol: str


def parse_symbology(doc, where: str) -> tuple[SymbolInterval, ...]:
    """Intervals from a ``symbology.json`` mapping raw symbols to instrument ids (stype_out instrument_id)."""
    if not isinstance(doc, dict) or not all(k in doc for k in SYMBOLOGY_KEYS):
        raise ManifestError(f"{where}: not a symbology.resolve result (needs {', '.join(SYMBOLOGY_KEYS)})")
    if doc["stype_out"] != "instrument_id" or not isinstance(doc["result"], dict):
        raise ManifestError(f"{where}: expected stype_out 'instrument_id' and a 'result' mapping")
    intervals = []
    for raw_symbol, entries in doc["result"].items():
        for entry in entries:
            if not entry.get("s"):
                continue  # Databento writes an empty s for dates the symbol did not resolve
            try:
                intervals.append(
                    SymbolInterval(
                        int(entry["s"]),
                        dt.date.fromisoformat(entry["d0"]),
                        dt.date.fromisoformat(entry["d1"]),
                        raw_symbol,
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ManifestError(f"{where}: bad interval for {raw_symbol!r}: {entry!r} ({exc})") from None
    return tuple(intervals)


def symbology_doc(intervals: list[SymbolInterval], start: dt.date, end: dt.date) -> dict:
    """A ``symbology.json`` document for ``intervals`` (the simulator writes what Databento would)."""
    result: dict[str, list] = {}
    for iv in sorted(intervals, key=lambda i: (i.symbol, i.start)):
        result.setdefault(iv.symbol, []).append(
            {"d0": iv.start.isoformat(), "d1": iv.end.isoformat(), "s": str(iv.instrument_id)}
        )
    return {
        "result": result,
        "symbols": sorted(result),
        "stype_in": "raw_symbol",
        "stype_out": "instrument_id",
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "partial": [],
        "not_found": [],
        "message": "OK",
        "status": 0,
    }


def _intervals_frame(intervals: tuple[SymbolInterval, ...]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "instrument_id": [i.instrument_id for i in intervals],
            "d0": [i.start for i in intervals],
            "d1": [i.end for i in intervals],
            "symbol": [i.symbol for i in intervals],
        },
        schema={"instrument_id": pl.UInt32, "d0": pl.Date, "d1": pl.Date, "symbol": pl.String},
    )


# --- the job ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchFile:
    filename: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BatchJob:
    """One delivered job folder, its support files read and their hashes verified."""

    folder: str  # relative to the vendor base ("" when the base is the job folder)
    job_id: str
    dataset: str
    files: dict[str, BatchFile]
    conditions: dict[dt.date, str]
    symbology: tuple[SymbolInterval, ...] = field(repr=False)
    processed_at: dt.datetime | None = None

    def day_file(self, day: dt.date) -> BatchFile | None:
        return self.files.get(day_file_name(self.dataset, day))


def parse_job_manifest(doc, where: str) -> dict[str, BatchFile]:
    entries = doc.get("files") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise ManifestError(f"{where}: expected a list of {{filename, size, hash, urls}}")
    files = {}
    for entry in entries:
        try:
            algo, _, digest = str(entry["hash"]).partition(":")
            if algo != "sha256" or len(digest) != 64:
                raise ValueError(f"hash {entry['hash']!r} is not sha256:<64 hex>")
            files[str(entry["filename"])] = BatchFile(
                str(entry["filename"]), int(entry["size"]), digest.lower()
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: bad file entry {entry!r} ({type(exc).__name__}: {exc})") from None
    return files


def _ns_to_datetime(value) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) or str(value).isdigit():
        return dt.datetime.fromtimestamp(int(value) / 1e9, dt.timezone.utc)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def load_job(read, folder: str, where: str) -> BatchJob:
    """Read a job folder through ``read(name) -> bytes``; every support file must match manifest.json.

    A support file whose bytes differ from the job manifest is refused here (``ManifestError``): its
    symbology or conditions cannot be trusted to interpret any day of the job.
    """
    files = parse_job_manifest(_json(MANIFEST, read(MANIFEST), where), f"{where}/{MANIFEST}")
    support = {}
    for name in SUPPORT_FILES:
        data = read(name)
        entry = files.get(name)
        if entry is None:
            raise ManifestError(f"{where}/{MANIFEST}: does not list {name}")
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != entry.size or digest != entry.sha256:
            raise ManifestError(
                f"{where}/{name}: {len(data)} bytes sha256 {digest[:12]}..., job manifest says "
                f"{entry.size} bytes sha256 {entry.sha256[:12]}... (hash mismatch)"
            )
        support[name] = _json(name, data, where)
    meta = support[METADATA]
    if not isinstance(meta, dict) or "dataset" not in meta:
        raise ManifestError(f"{where}/{METADATA}: no 'dataset'")
    if meta.get("schema", SCHEMA) != SCHEMA:
        raise ManifestError(
            f"{where}/{METADATA}: schema {meta.get('schema')!r}, this connector reads {SCHEMA}"
        )
    conditions = {}
    for entry in support[CONDITION] if isinstance(support[CONDITION], list) else [None]:
        try:
            day, condition = dt.date.fromisoformat(entry["date"]), str(entry["condition"])
        except (KeyError, TypeError, ValueError):
            raise ManifestError(
                f"{where}/{CONDITION}: bad entry {entry!r}, expected {{date, condition}}"
            ) from None
        if condition not in CONDITIONS:
            raise ManifestError(
                f"{where}/{CONDITION}: {day} condition {condition!r} not in {', '.join(CONDITIONS)}"
            )
        conditions[day] = condition
    return BatchJob(
        folder=folder,
        job_id=str(meta.get("id") or folder or "job"),
        dataset=str(meta["dataset"]),
        files=files,
        conditions=conditions,
        symbology=parse_symbology(support[SYMBOLOGY], f"{where}/{SYMBOLOGY}"),
        processed_at=_ns_to_datetime(meta.get("ts_process_done")),
    )


# --- decoding --------------------------------------------------------------------------------------------


def _decompress(name: str, data: bytes) -> bytes:
    import pyarrow as pa

    try:
        return pa.CompressedInputStream(pa.BufferReader(data), "zstd").read()
    except (OSError, ValueError) as exc:
        raise BarFileError(name, f"zstd: {exc}") from None


def decode_records(name: str, data: bytes) -> tuple[dbn.Metadata, list]:
    """The DBN metadata and records of one file (``.dbn`` or ``.dbn.zst``), decoded by databento-dbn."""
    raw = _decompress(name, data) if name.endswith(".zst") else data
    decoder = dbn.DBNDecoder()
    try:
        decoder.write(raw)
        decoded = decoder.decode()
    except (RuntimeError, ValueError, dbn.DBNError) as exc:
        raise BarFileError(name, f"DBN: {exc}") from None
    if decoder.buffer():
        raise BarFileError(
            name, f"DBN: {len(decoder.buffer())} bytes after the last whole record (truncated)"
        )
    if not decoded or not isinstance(decoded[0], dbn.Metadata):
        raise BarFileError(name, "DBN: no metadata header")
    return decoded[0], decoded[1:]


def decode_ohlcv(
    name: str, data: bytes, symbology: tuple[SymbolInterval, ...], window: tuple[dt.datetime, dt.datetime]
) -> pl.DataFrame:
    """Bars of one day file within ``window`` [start, end), symbols from ``symbology`` as of each bar's date.

    Records outside the window (Databento's equity bars include extended hours) are not the session's.
    A record whose instrument has no symbol on its date is a symbology gap: the file cannot be attributed.
    """
    metadata, records = decode_records(name, data)
    if str(metadata.schema) != SCHEMA:
        raise BarFileError(name, f"DBN schema {metadata.schema}, expected {SCHEMA}")
    wrong = [r for r in records if not isinstance(r, dbn.OHLCVMsg)]
    if wrong:
        raise BarFileError(
            name, f"{len(wrong)} record(s) are not OHLCV bars (first: {type(wrong[0]).__name__})"
        )
    prices = ("open", "high", "low", "close")

    def column(field_name: str, dtype) -> np.ndarray:
        return np.fromiter((getattr(r, field_name) for r in records), dtype, len(records))

    frame = pl.DataFrame(
        {
            "instrument_id": column("instrument_id", np.uint32),
            "ts_event": column("ts_event", np.int64),
            # numpy divides each fixed-point integer by 1e9 exactly rounded (polars may multiply by 1e-9)
            **{c: column(c, np.int64) / FIXED_PRICE_UNITS for c in prices},
            "volume": column("volume", np.uint64).astype(np.float64),
        }
    )
    start, end = (int(t.timestamp()) * 1_000_000_000 for t in window)
    frame = frame.filter((pl.col("ts_event") >= start) & (pl.col("ts_event") < end))
    ts = pl.from_epoch("ts_event", time_unit="ns").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    frame = frame.with_columns(ts.alias("ts")).with_columns(pl.col("ts").dt.date().alias("day"))
    mapped = frame.join(_intervals_frame(symbology), on="instrument_id", how="left").filter(
        pl.col("symbol").is_null() | ((pl.col("day") >= pl.col("d0")) & (pl.col("day") < pl.col("d1")))
    )
    lost = frame.join(
        mapped.select("instrument_id", "ts_event"), on=["instrument_id", "ts_event"], how="anti"
    )
    unmapped = (
        pl.concat(
            [
                lost.select("instrument_id", "day"),
                mapped.filter(pl.col("symbol").is_null()).select("instrument_id", "day"),
            ]
        )
        .unique()
        .sort("instrument_id", "day")
    )
    if unmapped.height == 0 and mapped.height != frame.height:
        raise BarFileError(
            name, "symbology overlap: an instrument has two symbols on one date in symbology.json"
        )
    if unmapped.height:
        pairs = ", ".join(f"{r['instrument_id']}@{r['day']}" for r in unmapped.head(5).iter_rows(named=True))
        raise BarFileError(
            name,
            f"symbology gap: {unmapped.height} instrument-day(s) have no symbol in symbology.json ({pairs})",
        )
    return mapped.select("symbol", "ts", *prices, "volume").sort("ts", "symbol")


# --- encoding (the simulator publishes as Databento would) -----------------------------------------------


def encode_ohlcv(
    dataset: str, day: dt.date, bars: pl.DataFrame, instrument_ids: dict[str, int], publisher_id: int = 1
) -> bytes:
    """One day file: DBN metadata + OHLCV-1m records written by databento-dbn, zstd-compressed by it too.

    Prices must be exact at 1e-9 (ours have 4 decimals); volumes are whole shares.
    """
    start = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) * 1_000_000_000
    metadata = dbn.Metadata(
        dataset=dataset,
        start=start,
        end=start + 86_400 * 1_000_000_000,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=dbn.Schema.OHLCV_1M,
        symbols=sorted(instrument_ids),
    )
    bars = bars.sort("ts", "symbol")
    ts = bars["ts"].dt.epoch("ns").to_numpy()
    prices = {
        c: np.rint(bars[c].to_numpy() * FIXED_PRICE_UNITS).astype(np.int64)
        for c in ("open", "high", "low", "close")
    }
    volume = bars["volume"].to_numpy()
    if np.any(volume < 0) or np.any(volume != np.rint(volume)):
        raise ValueError(f"{dataset} {day}: DBN volumes are unsigned whole numbers")
    ids = [instrument_ids[s] for s in bars["symbol"].to_list()]
    body = b"".join(
        bytes(
            dbn.OHLCVMsg(
                dbn.RType.OHLCV_1M,
                publisher_id,
                ids[i],
                int(ts[i]),
                int(prices["open"][i]),
                int(prices["high"][i]),
                int(prices["low"][i]),
                int(prices["close"][i]),
                int(volume[i]),
            )
        )
        for i in range(bars.height)
    )
    out = io.BytesIO()
    transcoder = dbn.Transcoder(out, dbn.Encoding.DBN, dbn.Compression.ZSTD, has_metadata=True)
    transcoder.write(metadata.encode() + body)
    transcoder.finish()
    return out.getvalue()


def manifest_entry(filename: str, data: bytes, url_base: str = "") -> dict:
    return {
        "filename": filename,
        "size": len(data),
        "hash": "sha256:" + hashlib.sha256(data).hexdigest(),
        "urls": {"https": f"{url_base.rstrip('/')}/{filename}" if url_base else filename},
    }


def dumps(doc) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


# --- the layout: sessions from one job folder or a folder of job folders ---------------------------------


def _utc_days(window: tuple[dt.datetime, dt.datetime]) -> list[dt.date]:
    """The UTC days (Databento's split unit) that [start, end) touches."""
    first, last = window[0].date(), (window[1] - dt.timedelta(microseconds=1)).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


class DatabentoLayout:
    """Batch jobs under the vendor base: the base itself is a job folder, or holds job folders (a later job
    that delivers a day again with other bytes is a restatement: the revision counts distinct hashes)."""

    def __init__(self, dataset: str | None = None):
        self.dataset = dataset

    def jobs(self, blobs) -> list[BatchJob]:
        try:
            blobs.get(MANIFEST)
            folders = [""]
        except VendorNotFound:
            folders = [f for f in blobs.list("") if not f.startswith((".", "_"))]
        jobs = []
        for folder in folders:
            try:
                job = load_job(lambda n, f=folder: blobs.get(join(f, n)), folder, join(blobs.url, folder))
            except VendorNotFound:
                continue  # not a job folder, or one still downloading its support files
            if self.dataset is None or job.dataset == self.dataset:
                jobs.append(job)
        epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        return sorted(jobs, key=lambda j: (j.processed_at or epoch, j.job_id))

    def locate(self, blobs, market, session, window):
        jobs = self.jobs(blobs)
        days = _utc_days(window)
        files, owners, conditions, revision, published = [], {}, [], 1, None
        for day in days:
            having = [j for j in jobs if j.day_file(day) is not None]
            said = [j.conditions[day] for j in jobs if day in j.conditions]
            if not having:
                return None  # the day file is missing: not delivered (the lag sensor decides when it is late)
            job = having[-1]
            entry = job.day_file(day)
            files.append(
                VendorFile(entry.filename, join(job.folder, entry.filename), entry.size, entry.sha256)
            )
            owners[entry.filename] = job
            conditions.append(said[-1] if said else "pending")
            revision = max(revision, len(dict.fromkeys(j.day_file(day).sha256 for j in having)))
            published = max(filter(None, (published, job.processed_at)), default=None)
        condition = next((c for c in ("missing", "pending", "degraded") if c in conditions), "available")

        def decode(name: str, data: bytes) -> pl.DataFrame:
            job = owners.get(name)
            if job is None:
                raise BarFileError(name, "not a file of this session's Databento job")
            return decode_ohlcv(name, data, job.symbology, window)

        return SessionDelivery(tuple(files), condition, decode, revision, published)

    def sessions(self, blobs, market) -> list[dt.date]:
        days = {d for job in self.jobs(blobs) for d in job.conditions if job.day_file(d) is not None}
        cal = calendar_for(market.market_id, market.calendar)
        if not days:
            return []
        return [s for s in cal.sessions(min(days), max(days)) if session_window(market, s)[0].date() in days]
