"""Publishing a simulated vendor drop into a directory or an S3 bucket, in batch or as a minute stream.

The drop is written through the platform's object store (``storage``, a layer below this one): a single S3
put and a temp-then-rename local write are both atomic, which is what makes the rewritten manifest of a
stream safe to read at any moment. :func:`drop_store` opens a drop (a directory, or ``s3://bucket/prefix`` on
any endpoint).

Revisions: publishing a session again with identical files is a no-op (idempotent); new files added with
the old ones unchanged (a stream's next minute) keep the revision; any changed file is a restatement: the
previous manifest is kept as ``manifest.r<N>.json``, changed files get a ``.r<N+1>`` name (old bytes stay
readable) and ``revision`` goes up. Ground truth for scenario damage goes to
``_ground_truth/<market>/<session>.json``, outside the vendor-visible layout.
"""

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from tradepulse_assets.markets import Market, MarketRegistry, calendar_for, load_registry
from tradepulse_assets.feeds.manifest import (
    GROUND_TRUTH_DIR,
    MANIFEST_NAME,
    Manifest,
    ManifestFile,
    archived_manifest_name,
    sha256_hex,
    write_bar_file,
)
from tradepulse_assets.feeds.scenarios import (
    BATCH,
    FaultSpec,
    Scenario,
    SessionPlan,
    apply_byte_faults,
    ground_truth,
    plan_session,
    resolve_rows,
    strip,
)
from tradepulse_assets.feeds.simulator import simulate_session
from tradepulse_assets.core.io import S3Settings
from tradepulse_assets.storage.object_store import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    object_store_from_url,
)

BATCH_LATENCY = dt.timedelta(minutes=2)  # a batch vendor publishes the session this long after the close
STREAM_LATENCY = dt.timedelta(seconds=5)  # a minute bar is published this long after the minute ends
PLAN_CACHE = 8  # sessions kept planned in memory (a stream ticks over the same session many times)
FORMATS = {"parquet": ".parquet", "csv": ".csv", "csv.gz": ".csv.gz"}


class PublishError(RuntimeError):
    """A destination that cannot be written; names the destination and key."""


def drop_store(url: str | os.PathLike[str], s3: S3Settings | None = None) -> ObjectStore:
    """The object store a simulated vendor publishes into: a directory or ``s3://bucket/prefix``.

    Local writes stay atomic but are not fsynced: the drop is a simulation that can be published again,
    and a stream rewrites its manifest every minute (fsyncing each costs a third more publishing time).
    """
    return object_store_from_url(url, s3=s3, fsync=False)


def _get(store: ObjectStore, key: str) -> bytes | None:
    """The object's bytes, or ``None`` while the vendor has not published it."""
    try:
        return store.get_bytes(key)
    except ObjectNotFound:
        return None


# --- writing a session --------------------------------------------------------------------------------


def session_prefix(market_id: str, session: dt.date) -> str:
    return f"{market_id}/{session.isoformat()}"


def _revised_name(name: str, revision: int) -> str:
    for suffix in sorted(FORMATS.values(), key=len, reverse=True):
        if name.endswith(suffix):
            return f"{name[: -len(suffix)]}.r{revision}{suffix}"
    return f"{name}.r{revision}"


def read_manifest(dest: ObjectStore, market_id: str, session: dt.date) -> Manifest | None:
    key = f"{session_prefix(market_id, session)}/{MANIFEST_NAME}"
    data = _get(dest, key)
    return None if data is None else Manifest.from_json(data, f"{key} in {dest.describe()}")


def write_session(
    dest: ObjectStore,
    market_id: str,
    session: dt.date,
    files: dict[str, bytes],
    condition: str,
    published_at: dt.datetime,
    vendor: str = "simulator",
    stored: dict[str, bytes] | None = None,
    restatement: bool = False,
) -> tuple[Manifest, bool]:
    """Publish ``files`` (name -> bytes the manifest describes) for one session; returns (manifest, changed).

    ``stored`` replaces the bytes actually written (a byte fault applied after the manifest was computed).
    With ``restatement=False`` files of the previous manifest that are not in ``files`` are carried over
    (a stream appends); with ``restatement=True`` the new file set replaces the old one.
    """
    prefix = session_prefix(market_id, session)
    previous = read_manifest(dest, market_id, session)
    entries = {name: ManifestFile(name, len(data), sha256_hex(data), 0) for name, data in files.items()}
    old = {logical_name(f.name): f for f in previous.files} if previous else {}
    if previous and _replays_history(dest, prefix, previous, entries):
        return (
            previous,
            False,
        )  # these exact files were an earlier revision: re-running a publish changes nothing
    changed = [n for n, e in entries.items() if n in old and old[n].sha256 != e.sha256]
    revision = previous.revision if previous else 1
    if previous and (changed or (restatement and set(entries) != set(old))):
        revision = previous.revision + 1
    renames = {
        n: (_revised_name(n, revision) if n in changed else old[n].name if n in old else n) for n in entries
    }
    counts = {name: _count(name, data) for name, data in files.items()}
    new_files = [ManifestFile(renames[n], e.size, e.sha256, counts[n]) for n, e in entries.items()]
    if previous and not restatement:
        new_files = [f for n, f in old.items() if n not in entries] + new_files
    new_files.sort(key=lambda f: f.name)
    manifest = Manifest(
        market=market_id,
        session=session,
        revision=revision,
        published_at=published_at,
        condition=condition,
        files=tuple(new_files),
        vendor=vendor,
        previous_revisions=(previous.previous_revisions + (archived_manifest_name(previous.revision),))
        if previous and revision != previous.revision
        else (previous.previous_revisions if previous else ()),
    )
    if previous and previous.to_json() == manifest.to_json():
        return previous, False
    stored = files if stored is None else stored
    for name, data in stored.items():
        if name in old and old[name].sha256 == entries[name].sha256:
            continue  # unchanged file already published
        dest.put_bytes(f"{prefix}/{renames[name]}", data)
    if previous and revision != previous.revision:
        dest.put_bytes(f"{prefix}/{archived_manifest_name(previous.revision)}", previous.to_json())
    dest.put_bytes(f"{prefix}/{MANIFEST_NAME}", manifest.to_json())  # last: readers see complete files only
    return manifest, True


def logical_name(name: str) -> str:
    """The name a file had before restatements renamed it (``bars.r3.parquet`` -> ``bars.parquet``)."""
    return re.sub(r"\.r\d+(?=\.(parquet|csv|csv\.gz)$)", "", name)


def _replays_history(
    dest: ObjectStore, prefix: str, current: Manifest, entries: dict[str, ManifestFile]
) -> bool:
    """True when ``entries`` all belong to an archived revision but not all to the current one."""
    pairs = {(n, e.sha256) for n, e in entries.items()}
    current_pairs = {(logical_name(f.name), f.sha256) for f in current.files}
    if pairs <= current_pairs:
        return False
    history = set()
    for archived in current.previous_revisions:
        data = _get(dest, f"{prefix}/{archived}")
        if data is not None:
            history |= {(logical_name(f.name), f.sha256) for f in Manifest.from_json(data, archived).files}
    return pairs <= history


def _count(name: str, data: bytes) -> int:
    from tradepulse_assets.feeds.manifest import parse_bar_file

    return parse_bar_file(name, data).height


def write_ground_truth(dest: ObjectStore, plan: SessionPlan, scenario_names) -> None:
    """Write the session's damage records; file damage recorded by an earlier run (a stream restarted after
    the damaged micro-batch went out) is kept, since this run will not write that file again."""
    key = f"{GROUND_TRUTH_DIR}/{session_prefix(plan.market.market_id, plan.session)}.json"
    doc = ground_truth(plan, scenario_names)
    existing = _get(dest, key)
    if existing is not None:
        earlier = [d for d in json.loads(existing).get("damages", []) if d.get("scope") == "file"]
        doc["damages"] += [d for d in earlier if d not in doc["damages"]]
    dest.put_bytes(key, (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode())


# --- the publisher ------------------------------------------------------------------------------------


@dataclass
class PublishResult:
    market: str
    session: dt.date
    status: str  # published | unchanged | stalled | pending
    revision: int | None = None
    files: int = 0
    records: int = 0
    condition: str | None = None
    published_at: dt.datetime | None = None
    damages: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, plan: SessionPlan, manifest: Manifest, changed: bool) -> "PublishResult":
        """The result of a publish that wrote (or found unchanged) ``manifest`` for ``plan``'s session."""
        return cls(
            plan.market.market_id,
            plan.session,
            "published" if changed else "unchanged",
            manifest.revision,
            len(manifest.files),
            manifest.record_count,
            manifest.condition,
            manifest.published_at,
            [d.kind for d in plan.damages],
        )

    def to_dict(self) -> dict:
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.__dict__.items()}


def _as_utc(minute: np.datetime64) -> dt.datetime:
    return minute.astype("datetime64[us]").astype(dt.datetime).replace(tzinfo=dt.timezone.utc)


class Publisher:
    """Publishes simulated sessions of the registry's markets, with scenarios applied, into ``dest``."""

    def __init__(
        self,
        dest: ObjectStore,
        seed: int = 0,
        n_symbols: int | None = None,
        scenarios: tuple[Scenario, ...] | list[Scenario] = (),
        file_format: str = "parquet",
        registry: MarketRegistry | None = None,
    ):
        if file_format not in FORMATS:
            raise PublishError(f"file format {file_format!r} not in {', '.join(FORMATS)}")
        self.dest, self.seed, self.n_symbols, self.suffix = dest, int(seed), n_symbols, FORMATS[file_format]
        self.scenarios = tuple(scenarios)
        self.faults: tuple[FaultSpec, ...] = tuple(f for s in self.scenarios for f in s.faults)
        self.registry = registry or load_registry()
        self._plans: dict[tuple[str, dt.date], SessionPlan] = {}

    def market(self, market_id: str) -> Market:
        return self.registry.get(market_id)

    def plan(self, market_id: str, session: dt.date) -> SessionPlan:
        key = (market_id, session)
        if key not in self._plans:
            market = self.market(market_id)
            frame = simulate_session(market, session, self.seed, self.n_symbols)
            if len(self._plans) >= PLAN_CACHE:
                self._plans.pop(next(iter(self._plans)))  # oldest first
            self._plans[key] = plan_session(market, session, frame, self.seed, self.faults)
        return self._plans[key]

    def _truth(self, plan: SessionPlan) -> None:
        write_ground_truth(self.dest, plan, [s.name for s in self.scenarios])

    def _files(self, plan: SessionPlan, frame: pl.DataFrame, by_minute: bool) -> dict[str, bytes]:
        if not by_minute:
            return {f"bars{self.suffix}": write_bar_file(f"bars{self.suffix}", strip(frame))}
        files = {}
        for (minute,), part in frame.partition_by(BATCH, as_dict=True, maintain_order=True).items():
            name = self._minute_name(minute)
            files[name] = write_bar_file(name, strip(part))
        return files

    def _minute_name(self, minute) -> str:
        """``bars-HHMM<suffix>`` for the micro-batch delivering ``minute`` (UTC)."""
        if isinstance(minute, np.datetime64):
            minute = _as_utc(minute)
        return f"bars-{minute:%H%M}{self.suffix}"

    # batch -------------------------------------------------------------------------------------------
    def publish_session(self, market_id: str, session: dt.date, by_minute: bool = False) -> PublishResult:
        """Publish a whole session as a batch vendor would (just after the close), restatement included."""
        plan = self.plan(market_id, session)
        market = plan.market
        close = calendar_for(market.market_id, market.calendar).hours(session).close
        published_at = close + BATCH_LATENCY + plan.delay
        names = [d.kind for d in plan.damages]
        if plan.stall_at is not None:
            self._truth(plan)
            return PublishResult(market_id, session, "stalled", damages=names)
        files = self._files(plan, plan.frame, by_minute)
        stored = apply_byte_faults(plan, files)
        resolve_rows(plan, plan.frame, 1)
        manifest, changed = write_session(
            self.dest, market_id, session, files, plan.condition, published_at, stored=stored
        )
        if plan.restated is not None:
            refiles = self._files(plan, plan.restated, by_minute)
            manifest, changed2 = write_session(
                self.dest,
                market_id,
                session,
                refiles,
                plan.condition,
                published_at + plan.restate_after,
                restatement=True,
            )
            resolve_rows(plan, plan.restated, 2)
            changed = changed or changed2
        self._truth(plan)
        return PublishResult.of(plan, manifest, changed)

    def publish_range(
        self,
        market_id: str,
        start: dt.date,
        end: dt.date,
        by_minute: bool = False,
        on_session: Callable[[PublishResult], None] | None = None,
    ) -> list[PublishResult]:
        market = self.market(market_id)
        results = []
        for session in calendar_for(market.market_id, market.calendar).sessions(start, end):
            result = self.publish_session(market_id, session, by_minute)
            results.append(result)
            if on_session:
                on_session(result)
        return results

    # streaming ---------------------------------------------------------------------------------------
    def batch_times(self, plan: SessionPlan) -> dict[np.datetime64, dt.datetime]:
        """When each micro-batch (by its delivering minute) becomes visible; stalled batches are absent."""
        minutes = plan.frame[BATCH].unique(maintain_order=True).dt.replace_time_zone(None).to_numpy()
        times = {}
        for m in minutes:
            start = _as_utc(m)
            if plan.stall_at is not None and start >= plan.stall_at:
                continue
            times[m] = start + dt.timedelta(minutes=1) + STREAM_LATENCY + plan.delay
        return times

    def publish_due(self, market_id: str, session: dt.date, now: dt.datetime) -> PublishResult:
        """Publish every micro-batch of ``session`` visible at ``now`` (idempotent: call it on every tick)."""
        plan = self.plan(market_id, session)
        market = plan.market
        close = calendar_for(market.market_id, market.calendar).hours(session).close
        times = self.batch_times(plan)
        due = sorted(m for m, t in times.items() if t <= now)
        if not due:
            return PublishResult(market_id, session, "pending", damages=[d.kind for d in plan.damages])
        complete = len(due) == len(times) and plan.stall_at is None and now >= close
        condition = plan.condition if complete else "pending"
        published_at = max(times[m] for m in due)
        previous = read_manifest(self.dest, market_id, session)
        listed = {logical_name(f.name) for f in previous.files} if previous else set()
        names = {m: self._minute_name(m) for m in times}
        fresh = [m for m in due if names[m] not in listed]
        frame = plan.frame.filter(
            pl.col(BATCH)
            .dt.replace_time_zone(None)
            .is_in(pl.Series(np.array(fresh, dtype="datetime64[us]")).implode())
        )
        files = self._files(plan, frame, by_minute=True)
        if previous and not files and previous.condition == condition:
            manifest, changed = previous, False
        else:
            stored = apply_byte_faults(plan, files, candidates=list(names.values()))
            resolve_rows(plan, plan.frame, 1)
            manifest, changed = write_session(
                self.dest,
                market_id,
                session,
                files,
                condition,
                published_at if files or not previous else previous.published_at,
                stored=stored,
            )
        if complete and plan.restated is not None and now >= published_at + plan.restate_after:
            if manifest.revision == 1:
                refiles = self._files(plan, plan.restated, by_minute=True)
                manifest, _ = write_session(
                    self.dest,
                    market_id,
                    session,
                    refiles,
                    condition,
                    published_at + plan.restate_after,
                    restatement=True,
                )
            resolve_rows(plan, plan.restated, 2)
        self._truth(plan)
        return PublishResult.of(plan, manifest, changed)


# --- user-supplied files ------------------------------------------------------------------------------


def manifest_for_directory(
    folder: str | os.PathLike,
    market: str | None = None,
    session: dt.date | None = None,
    condition: str = "available",
    published_at: dt.datetime | None = None,
    vendor: str = "user",
) -> tuple[Manifest, bool]:
    """Write ``manifest.json`` for the bar files a user dropped into ``<root>/<market>/<session>/``.

    Market and session default to the folder's two last path components. A folder whose files changed since
    its last manifest gets a new revision (the old manifest is kept as ``manifest.r<N>.json``); an unchanged
    folder keeps its manifest (returns changed=False). Every file is parsed, so a broken file is reported now,
    naming it, rather than at ingestion.
    """
    from tradepulse_assets.feeds.manifest import describe_file, is_bar_file

    path = Path(folder)
    if not path.is_dir():
        raise PublishError(f"{path}: not a directory")
    market = market or path.parent.name
    if session is None:
        try:
            session = dt.date.fromisoformat(path.name)
        except ValueError:
            raise PublishError(
                f"{path}: folder name is not a session date (YYYY-MM-DD); pass --session"
            ) from None
    names = sorted(p.name for p in path.iterdir() if p.is_file() and is_bar_file(p.name))
    if not names:
        raise PublishError(f"{path}: no bar files (*.parquet, *.csv, *.csv.gz)")
    files = tuple(describe_file(n, (path / n).read_bytes()) for n in names)
    dest = LocalObjectStore(path)  # the user's own folder: fsynced
    data = _get(dest, MANIFEST_NAME)
    previous = Manifest.from_json(data, str(path / MANIFEST_NAME)) if data is not None else None
    if previous and previous.files == files and previous.condition == condition:
        return previous, False
    published_at = published_at or dt.datetime.now(dt.timezone.utc)
    revision, history = 1, ()
    if previous:
        revision = previous.revision + 1
        history = previous.previous_revisions + (archived_manifest_name(previous.revision),)
        dest.put_bytes(archived_manifest_name(previous.revision), previous.to_json())
    manifest = Manifest(
        market=market,
        session=session,
        revision=revision,
        published_at=published_at,
        condition=condition,
        files=files,
        vendor=vendor,
        previous_revisions=history,
    )
    dest.put_bytes(MANIFEST_NAME, manifest.to_json())
    return manifest, True
