"""Landing, staging and promotion of one market session.

- ``land_session`` fetches the vendor's manifest and files, keeps the bytes as delivered (the manifest too,
  not re-serialised) under ``landing/raw/market=<M>/session=<S>/delivery=<digest>/``, one prefix per distinct
  delivery (a delivery of ``RAW_PACK_MIN`` files or more, a streamed session's 1,440, as one stored zip,
  ``_files.zip``, whose members are the files byte for byte: one object to write instead of 1,440), verifies
  each file against the manifest and parses it. Quarantine copies from that prefix (a pack expanded), so a
  vendor fixing a file in place after a failure can never make the evidence the good bytes. One audit line per
  file and attempt (sha256 of the bytes held, revision, delivery digest).
- ``stage_session`` runs the quality gates and writes the staging layer.
- ``promote_session`` copies staging to production; callers do it only when the blocking gates pass.
Every write replaces the partition atomically, so re-running a step is idempotent.
"""

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from tradepulse_assets.markets import Market, calendar_for
from tradepulse_assets.pipeline.decisions import short_digest
from tradepulse_assets.pipeline.ownership import AlreadyLanded, RevisionRefused, SessionLedger
from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS
from tradepulse_assets.quality import GateConfig, GateResult, config_for_market, run_gate_suite
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import ObjectNotFound, ObjectStore
from tradepulse_assets.feeds.connectors import Connector, VendorNotFound, VendorRefused, file_parser
from tradepulse_assets.feeds.manifest import (
    MANIFEST_NAME,
    Fault,
    Manifest,
    ManifestError,
    ManifestFile,
    manifest_faults,
    parse_bar_file,
    readable_names,
    sha256_hex,
    verify_and_parse_many,
)

RAW_PREFIX = "landing/raw"
LANDING_GATE = "landing_verification"
RECEIPT_NAME = "_receipt.json"
RAW_PACK_NAME = "_files.zip"  # a large delivery's files, verbatim, as members of one stored zip
RAW_PACK_MIN = 16  # deliveries of this many files or more are kept as one pack


class NotPublished(RuntimeError):
    """The vendor has not (fully) published the session yet: retry later, this is lag, not corruption."""


def raw_prefix(market_id: str, session: dt.date) -> str:
    """The session's landing area: its receipt (the latest landing), one ``delivery=`` prefix per delivery."""
    return f"{RAW_PREFIX}/market={market_id}/session={session.isoformat()}"


def delivery_prefix(market_id: str, session: dt.date, digest: str) -> str:
    """Where one delivery's bytes are kept as delivered: named by its digest, so a later delivery (a fix in
    place, a restatement) lands beside it and never over it."""
    return f"{raw_prefix(market_id, session)}/delivery={short_digest(digest)}"


@dataclass(frozen=True)
class LandedFile:
    name: str
    raw_key: str
    size: int
    sha256: str
    rows: int | None
    faults: tuple[Fault, ...]


@dataclass
class LandingOutcome:
    market: str
    session: dt.date
    manifest: Manifest
    files: list[LandedFile]
    bars: pl.DataFrame | None
    landed_at: dt.datetime
    faults: list[Fault] = field(default_factory=list)
    digest: str | None = None

    @property
    def ok(self) -> bool:
        return not self.faults

    @property
    def vendor_total(self) -> int:
        return self.manifest.record_count

    @property
    def rows(self) -> int:
        return 0 if self.bars is None else self.bars.height

    def to_metadata(self) -> dict:
        return {
            "revision": self.manifest.revision,
            "delivery": self.digest,  # the delivery's identity (VendorDelivery.digest): quarantine and revision rules
            "condition": self.manifest.condition,
            "files": len(self.files),
            "rows": self.rows,
            "vendor_total": self.vendor_total,
            "faults": [f.to_dict() for f in self.faults[:20]],
            "raw_prefix": raw_prefix(self.market, self.session),
            "delivery_prefix": delivery_prefix(self.market, self.session, self.digest) if self.digest else "",
        }


def _combine(frames: list[pl.DataFrame], names: list[str]) -> tuple[pl.DataFrame | None, list[Fault]]:
    if not frames:
        return None, []
    try:
        return pl.concat(frames, how="diagonal_relaxed"), []
    except (pl.exceptions.PolarsError, TypeError) as exc:
        return None, [Fault("schema", ",".join(names), f"files do not share one schema: {exc}")]


@dataclass(frozen=True)
class DeliveredFile:
    entry: ManifestFile
    data: bytes | None  # None: not read (missing from the drop, or refused: it points outside it)
    faults: tuple[Fault, ...]
    bars: pl.DataFrame | None


@dataclass(frozen=True)
class VendorDelivery:
    """A session as the vendor delivered it: the manifest and every file, verified and parsed.

    ``unreadable``: the manifest could not be read (not JSON, malformed, or refused because the session
    folder or the manifest points outside the drop). The delivery then carries a stand-in manifest listing no
    files, revision 0, and one ``manifest`` fault; it fails landing and is quarantined like any bad delivery.
    """

    manifest: Manifest
    files: tuple[DeliveredFile, ...]
    manifest_faults: tuple[Fault, ...] = ()  # what is wrong with the manifest itself (feeds.manifest)
    unreadable: bool = False

    @property
    def faults(self) -> list[Fault]:
        return [*self.manifest_faults, *(f for file in self.files for f in file.faults)]

    @property
    def manifest_bytes(self) -> bytes | None:
        """The manifest as delivered, byte for byte (``None``: nothing was read, e.g. a refused folder)."""
        return self.manifest.source_bytes if self.unreadable else delivered_bytes(self.manifest)

    @property
    def digest(self) -> str:
        """The delivery's identity: the manifest bytes and the file bytes actually delivered (a corrupt file
        and its fixed re-delivery under the same manifest are two deliveries)."""
        files = [(f.entry.name, f.data or b"") for f in self.files]
        return delivery_digest(self.manifest_bytes or b"", files)


def delivered_bytes(manifest: Manifest) -> bytes:
    """The manifest's bytes as the vendor delivered them (canonical JSON for one built in code)."""
    return manifest.source_bytes if manifest.source_bytes is not None else manifest.to_json()


def delivery_digest(manifest_bytes: bytes, files: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256(manifest_bytes)
    for name, data in sorted(files):
        h.update(f"\n{name}:{hashlib.sha256(data).hexdigest()}".encode())
    return h.hexdigest()


def unreadable_delivery(market_id: str, session: dt.date, message: str, data: bytes | None) -> VendorDelivery:
    """A manifest that cannot be read, as a failed delivery (its bytes, if any, kept as evidence)."""
    stand_in = Manifest(market_id, session, 0, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "available", (),
                        vendor="unknown", source_bytes=data)
    return VendorDelivery(stand_in, (), (Fault("manifest", MANIFEST_NAME, message),), unreadable=True)


def read_vendor_manifest(connector: Connector, market_id: str, session: dt.date) -> Manifest | VendorDelivery:
    """The vendor's manifest, ``None`` if none is published, or (unreadable) the failed delivery it makes."""
    try:
        return connector.read_manifest(market_id, session)
    except ManifestError as exc:
        return unreadable_delivery(market_id, session, str(exc), exc.data)
    except VendorRefused as exc:
        return unreadable_delivery(market_id, session, str(exc), None)


def fetch_delivery(connector: Connector, market_id: str, session: dt.date) -> VendorDelivery:
    """Read the manifest and files and check each file against the manifest (size, sha256, records).

    Only "no manifest yet" or a pending/missing condition is ``NotPublished``.
    """
    manifest = read_vendor_manifest(connector, market_id, session)
    if isinstance(manifest, VendorDelivery):
        return manifest
    if manifest is None:
        raise NotPublished(f"{market_id} {session}: the vendor has published no manifest yet")
    if manifest.condition in ("pending", "missing"):
        raise NotPublished(f"{market_id} {session}: vendor condition is {manifest.condition!r}")
    parse = file_parser(connector, market_id, session)  # the drop format by extension, a vendor format its own
    # An empty file list, traversal or unknown names, a file missing from the drop or pointing outside it are
    # faults of the delivery (landing fails, the batch is quarantined), never "not published".
    problems = manifest_faults(manifest, market_id, session, drop_format=parse is parse_bar_file)
    readable = readable_names(manifest, problems)
    read = [_read_file(connector, market_id, session, e) for e in manifest.files if e.name in readable]
    delivered = [(f.entry, f.data) for f in read if f.data is not None]
    verified = iter(verify_and_parse_many(delivered, parse))  # the drop's files parsed in one read
    files = [f if f.data is None else _verified_file(f, *next(verified)) for f in read]
    return VendorDelivery(manifest, tuple(dict((f.entry.name, f) for f in files).values()), tuple(problems))


def _read_file(connector: Connector, market_id: str, session: dt.date, entry: ManifestFile) -> DeliveredFile:
    """The file as read, not yet verified (no faults), or the fault that it could not be read."""
    try:
        data = connector.read_file(market_id, session, entry.name)
    except VendorRefused as exc:
        return DeliveredFile(entry, None, (Fault("refused", entry.name, str(exc)),), None)
    except VendorNotFound as exc:
        message = f"{entry.name}: listed in the manifest but not in the drop ({exc})"
        return DeliveredFile(entry, None, (Fault("missing_file", entry.name, message),), None)
    return DeliveredFile(entry, data, (), None)


def _verified_file(read: DeliveredFile, faults: list[Fault], bars: pl.DataFrame | None) -> DeliveredFile:
    return DeliveredFile(read.entry, read.data, tuple(faults), None if faults else bars)


def served_digest(connector: Connector, manifest: Manifest) -> str:
    """``VendorDelivery.digest`` of what the vendor serves now, without parsing: what a launcher compares with the
    deliveries already quarantined (a re-delivery of fixed bytes under the same manifest is a new delivery)."""
    parse = file_parser(connector, manifest.market, manifest.session)
    names = readable_names(manifest, manifest_faults(manifest, manifest.market, manifest.session,
                                                     drop_format=parse is parse_bar_file))
    files = [(name, _served_bytes(connector, manifest, name)) for name in names]
    return delivery_digest(delivered_bytes(manifest), files)


def _served_bytes(connector: Connector, manifest: Manifest, name: str) -> bytes:
    """A file's bytes for the digest; missing from the drop or refused, it counts as empty (as in landing)."""
    try:
        return connector.read_file(manifest.market, manifest.session, name)
    except (VendorNotFound, VendorRefused):
        return b""


def combined_bars(delivery: VendorDelivery) -> tuple[pl.DataFrame | None, list[Fault]]:
    """All verified files as one frame, plus every fault (a schema clash between files is one)."""
    bars, combine_faults = _combine([f.bars for f in delivery.files if f.bars is not None],
                                    [f.entry.name for f in delivery.files])
    faults = delivery.faults + combine_faults
    return (bars if not faults else None), faults


RevisionGuard = Callable[[Manifest, str], None]


def land_session(
    connector: Connector, store: ObjectStore, audit: AuditLog, market: Market, session: dt.date,
    now: dt.datetime, guard: RevisionGuard | None = None,
) -> LandingOutcome:
    """Land the vendor's delivery. ``guard(manifest, digest)`` may refuse it (``RevisionRefused``) or find it
    already landed (``AlreadyLanded``) before anything is written: audited, and the landed bytes, receipt and
    production stay as they were. A delivery whose manifest is unreadable has no revision to judge: it lands as
    a failure, unguarded.
    """
    delivery = fetch_delivery(connector, market.market_id, session)
    manifest = delivery.manifest
    digest = delivery.digest
    if guard is not None and not delivery.unreadable:
        try:
            guard(manifest, digest)
        except (RevisionRefused, AlreadyLanded) as exc:
            verdict = "refused" if isinstance(exc, RevisionRefused) else "skipped"
            audit.append({
                "event": "landing", "market": market.market_id, "session": session.isoformat(),
                "batch": f"r{manifest.revision}/*", "rows": 0, "sha256": digest,
                "revision": manifest.revision, "delivery": digest, "outcome": f"{verdict}: {exc}",
            })
            raise
    prefix = delivery_prefix(market.market_id, session, digest)
    previous = read_receipt(store, market.market_id, session) or {}
    # The bytes as delivered, whatever their verdict, in one group commit (a streamed session: one pack).
    kept = {f.entry.name: f.data for f in delivery.files if f.data is not None}
    delivered = raw_objects(prefix, kept)
    if delivery.manifest_bytes is not None:
        delivered[f"{prefix}/{MANIFEST_NAME}"] = delivery.manifest_bytes
    store.put_many(delivered)
    packed = f"{prefix}/{RAW_PACK_NAME}" in delivered
    landed = []
    for file in delivery.files:
        key = "" if file.data is None else f"{prefix}/{RAW_PACK_NAME if packed else file.entry.name}"
        rows = None if file.bars is None else file.bars.height
        landed.append(LandedFile(file.entry.name, key, len(file.data or b""), file.entry.sha256, rows, file.faults))
    audit.append_many(landing_events(market.market_id, session, delivery))
    bars, faults = combined_bars(delivery)
    if bars is not None:
        lake.write_frame(store, "landing", market.market_id, session, bars)
    outcome = LandingOutcome(market.market_id, session, manifest, landed, bars, now, faults, digest)
    first_landed_at = previous.get("first_landed_at") or previous.get("landed_at") or now.isoformat()
    receipt = dumps({**outcome.to_metadata(), "landed_at": now.isoformat(),
                     "first_landed_at": first_landed_at, "ok": outcome.ok})
    # The delivery's own receipt (its faults, for its quarantine), then the session's (the latest landing).
    store.put_many({f"{prefix}/{RECEIPT_NAME}": receipt,
                    f"{raw_prefix(market.market_id, session)}/{RECEIPT_NAME}": receipt})
    return outcome


def pack_bytes(files: dict[str, bytes]) -> bytes:
    """A stored zip of ``files`` (members verbatim, sorted, fixed timestamps): the same files are always the
    same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as pack:
        for name in sorted(files):
            pack.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), files[name])
    return buffer.getvalue()


def unpack(data: bytes, names_only: bool = False) -> dict[str, bytes | None]:
    """The members of a pack by name (values None with ``names_only``)."""
    with zipfile.ZipFile(io.BytesIO(data)) as pack:
        return {name: None if names_only else pack.read(name) for name in pack.namelist()}


def raw_objects(prefix: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """The objects that keep a delivery's files under ``prefix``: one per file, or one pack of them all
    (``RAW_PACK_NAME``) when there are ``RAW_PACK_MIN`` or more."""
    if len(files) >= RAW_PACK_MIN:
        return {f"{prefix}/{RAW_PACK_NAME}": pack_bytes(files)}
    return {f"{prefix}/{name}": data for name, data in files.items()}


def raw_files(store: ObjectStore, prefix: str) -> dict[str, bytes]:
    """Every object under a delivery's ``prefix`` by name, a pack's members in place of the pack."""
    read = store.get_many(store.list_keys(prefix + "/"))  # on S3, concurrent GETs (a batch is one per file)
    files = {key.rsplit("/", 1)[-1]: data for key, data in read.items()}
    pack = files.pop(RAW_PACK_NAME, None)
    return files if pack is None else {**unpack(pack), **files}


def landing_events(market_id: str, session: dt.date, delivery: VendorDelivery) -> list[dict]:
    """One audit line for the manifest and one per file read: the sha256 of the bytes held (the manifest's
    declared one beside it), the revision and the delivery digest."""
    revision, digest = delivery.manifest.revision, delivery.digest
    base = {"event": "landing", "market": market_id, "session": session.isoformat(), "revision": revision,
            "delivery": digest}

    def outcome(faults) -> str:
        return "quarantine:" + ",".join(f.check for f in faults) if faults else "ok"

    events = [{**base, "batch": f"r{revision}/{MANIFEST_NAME}", "rows": delivery.manifest.record_count,
               "sha256": sha256_hex(delivery.manifest_bytes or b""),
               "outcome": outcome(delivery.manifest_faults)}]
    for file in delivery.files:
        events.append({**base, "batch": f"r{revision}/{file.entry.name}",
                       "rows": 0 if file.bars is None else file.bars.height,
                       "sha256": sha256_hex(file.data or b""), "declared_sha256": file.entry.sha256,
                       "outcome": outcome(file.faults)})
    return events


def read_delivery_receipt(store: ObjectStore, market_id: str, session: dt.date, digest: str) -> dict | None:
    """What the landing of one delivery found (its faults, revision, landed_at)."""
    try:
        return json.loads(store.get_bytes(f"{delivery_prefix(market_id, session, digest)}/{RECEIPT_NAME}"))
    except ObjectNotFound:
        return None


def preflight(connector: Connector, market: Market, session: dt.date, config: GateConfig = GateConfig()
              ) -> list[GateResult]:
    """Every gate on a vendor delivery without landing it: the pre-flight check of ``quality check``."""
    delivery = fetch_delivery(connector, market.market_id, session)
    bars, faults = combined_bars(delivery)
    outcome = LandingOutcome(market.market_id, session, delivery.manifest, [], bars, None, faults)
    gate = landing_gate(outcome)
    if bars is None:
        return [gate]
    results = run_gate_suite(
        bars, calendar_for(market.market_id, market.calendar), session,
        vendor_total=delivery.manifest.record_count, checksums_ok=True,
        vendor_condition=delivery.manifest.condition,
        landed_at=None, deadline=None,  # nothing landed: freshness is the lag sensors' business
        expected_symbols=market.symbols, config=config_for_market(market, config),
    )
    return [gate, *results]


def read_receipt(store: ObjectStore, market_id: str, session: dt.date) -> dict | None:
    """What the last landing of the session found (landed_at, revision, vendor_total, faults)."""
    try:
        return json.loads(store.get_bytes(f"{raw_prefix(market_id, session)}/{RECEIPT_NAME}"))
    except ObjectNotFound:
        return None


def landing_gate(outcome: LandingOutcome) -> GateResult:
    """The landing verification as a gate result, so it shows up beside the quality gates."""
    faults = outcome.faults
    return GateResult(
        gate=LANDING_GATE,
        passed=not faults,
        blocking=True,
        summary=(
            f"{len(outcome.manifest.files)} file(s), {outcome.rows} rows match the manifest r{outcome.manifest.revision}"
            if not faults
            else f"{len(faults)} fault(s): " + "; ".join(f.message for f in faults[:3])
        ),
        counts={"files": len(outcome.manifest.files), "faults": len(faults), "vendor_total": outcome.vendor_total},
        evidence=[f.to_dict() for f in faults[:20]],
        gap_windows=[],
    )


def already_landed_gate(reason: str) -> GateResult:
    """The landing check of a run that landed nothing because another run landed the same delivery: not
    evaluated here (the other run's verdict stands), so it neither fails nor claims a verification."""
    return GateResult(gate=LANDING_GATE, passed=True, blocking=True, summary=f"skipped: {reason}",
                      counts={"evaluated": 0}, evidence=[], gap_windows=[], evaluated=False)


def session_deadline(market: Market, session: dt.date) -> dt.datetime:
    """When the session's data is due: its close plus the market's lag SLA."""
    hours = calendar_for(market.market_id, market.calendar).hours(session)
    return hours.close + dt.timedelta(seconds=market.lag_sla_seconds)


def normalise(bars: pl.DataFrame) -> pl.DataFrame:
    """The staging shape: bar columns in order, sorted by symbol and time (only when the schema holds)."""
    columns = [c for c in (*BAR_COLUMNS, *OPTIONAL_BAR_COLUMNS) if c in bars.columns]
    return bars.select(columns).sort("symbol", "ts")


@dataclass
class StagingOutcome:
    market: str
    session: dt.date
    bars: pl.DataFrame
    results: list[GateResult]

    @property
    def blocking_failures(self) -> list[GateResult]:
        return [r for r in self.results if r.blocking and not r.passed]

    @property
    def promotable(self) -> bool:
        return not self.blocking_failures


def stage_session(
    store: ObjectStore, market: Market, session: dt.date, *, is_backfill: bool = False, config: GateConfig = GateConfig()
) -> StagingOutcome:
    """Run every gate on the landed session (manifest totals from the landing receipt) and write staging."""
    bars = lake.read_frame(store, "landing", market.market_id, session)
    receipt = read_receipt(store, market.market_id, session) or {}
    # Freshness is judged on the first landing; a later landing of the session is a re-landing (see
    # quality.gates.check_freshness), whoever launched it.
    landed_at = receipt.get("first_landed_at") or receipt.get("landed_at")
    relanded = landed_at is not None and landed_at != receipt.get("landed_at")
    results = run_gate_suite(
        bars,
        calendar_for(market.market_id, market.calendar),
        session,
        vendor_total=receipt.get("vendor_total"),
        checksums_ok=receipt.get("ok"),
        vendor_condition=receipt.get("condition"),
        landed_at=dt.datetime.fromisoformat(landed_at) if landed_at else None,
        deadline=session_deadline(market, session),
        expected_symbols=market.symbols,
        is_backfill=is_backfill or relanded,
        config=config_for_market(market, config),
    )
    schema_ok = all(r.passed for r in results if r.gate == "schema")
    staged = normalise(bars) if schema_ok else bars
    lake.write_frame(store, "staging", market.market_id, session, staged)
    return StagingOutcome(market.market_id, session, staged, results)


def promote_session(store: ObjectStore, market: Market, session: dt.date, audit: AuditLog | None = None) -> int:
    """Staging -> production (the lake). Returns the rows promoted.

    With ``audit``: one ``promotion`` event (sha256 of the production partition, vendor revision), and one
    ``universe_change`` event per promoted symbol outside the market's universe (its policy let it through
    with a warning; docs/quality-gates.md).
    """
    bars = lake.read_frame(store, "staging", market.market_id, session)
    key = lake.write_frame(store, "production", market.market_id, session, bars)
    if audit is not None:
        receipt = read_receipt(store, market.market_id, session) or {}
        revision = receipt.get("revision")
        event = {
            "market": market.market_id,
            "session": session.isoformat(),
            "sha256": sha256_hex(store.get_bytes(key)),
            "revision": revision,
            "delivery": receipt.get("delivery"),
        }
        audit.append({**event, "event": "promotion", "batch": f"r{revision}/production", "rows": bars.height,
                      "outcome": "promoted"})
        for symbol, rows in unknown_symbols(bars, market).items():
            audit.append({**event, "event": "universe_change", "batch": f"r{revision}/{symbol}", "rows": rows,
                          "outcome": f"added:{symbol}", "symbol": symbol})
    return bars.height


def unknown_symbols(bars: pl.DataFrame, market: Market) -> dict[str, int]:
    """Rows per delivered symbol that is not in the market's universe."""
    if "symbol" not in bars.columns:
        return {}
    counts = bars.filter(~pl.col("symbol").is_in(list(market.symbols))).group_by("symbol").len().sort("symbol")
    return dict(counts.iter_rows())


def ledger_guard(ledger: SessionLedger, market_id: str, session: dt.date,
                 launched_at: dt.datetime | None = None) -> RevisionGuard:
    """The revision rule as a landing guard: nothing lower than what production holds replaces it; with
    ``launched_at`` (a Dagster run's creation), a delivery another run landed meanwhile is not landed again."""
    def guard(manifest: Manifest, digest: str) -> None:
        if launched_at is not None:
            ledger.check_not_overtaken(market_id, session, manifest.revision, digest, launched_at)
        ledger.check_revision(market_id, session, manifest.revision, digest)

    return guard


@dataclass(frozen=True)
class ExclusiveOutcome:
    landing: LandingOutcome
    staging: StagingOutcome | None
    promoted_rows: int | None


def ingest_session_exclusively(
    connector: Connector, store: ObjectStore, audit: AuditLog, ledger: SessionLedger, market: Market,
    session: dt.date, now: dt.datetime, holder: str, *, wait: dt.timedelta = dt.timedelta(minutes=5),
    is_backfill: bool = False, config: GateConfig = GateConfig(),
) -> ExclusiveOutcome:
    """Land, stage and promote one session as its sole owner (the lease), revisions only moving forward.

    The same steps the Dagster assets run one per asset; this composition serves code that runs a session
    outside a Dagster run (tests of the ownership rules, tools)."""
    ledger.acquire(market.market_id, session, holder, wait=wait)
    try:
        landed = land_session(connector, store, audit, market, session, now,
                              guard=ledger_guard(ledger, market.market_id, session))
        if not landed.ok:
            return ExclusiveOutcome(landed, None, None)
        staged = stage_session(store, market, session, is_backfill=is_backfill, config=config)
        if not staged.promotable:
            return ExclusiveOutcome(landed, staged, None)
        rows = []
        ledger.record_promotion(market.market_id, session, landed.manifest.revision, landed.digest, holder,
                                promote=lambda: rows.append(promote_session(store, market, session, audit)))
        return ExclusiveOutcome(landed, staged, rows[0])
    finally:
        ledger.release(market.market_id, session, holder)


def reconciliation(outcome: LandingOutcome, staged_rows: int | None = None) -> dict:
    """Rows against vendor totals and checksums: what a backfill report records per partition."""
    rows = outcome.rows if staged_rows is None else staged_rows
    checksums_ok = not any(f.check in ("sha256", "size") for f in outcome.faults)
    verdict = "reconciled" if outcome.ok and rows == outcome.vendor_total else "mismatch"
    return {
        "market": outcome.market,
        "session": outcome.session.isoformat(),
        "rows": rows,
        "vendor_rows": outcome.vendor_total,
        "checksums_ok": checksums_ok,
        "revision": outcome.manifest.revision,
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in outcome.files],
        "verdict": verdict,
    }


def dumps(payload: dict) -> bytes:
    return (json.dumps(payload, sort_keys=True, indent=2, default=str) + "\n").encode()
