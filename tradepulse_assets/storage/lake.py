"""The Parquet lake and the quarantine area, laid out on an :class:`ObjectStore`.

Layout (hive-style, so DuckDB and polars recover ``market`` and ``session`` from the path)::

    lake/<layer>/market=<M>/session=<YYYY-MM-DD>/part-0.parquet     layer: landing | staging | production
                                                                          | features/<name>
    quarantine/<incident_id>/<batch_id>/<original file name>        original bytes, tagged
    quarantine/<incident_id>/<batch_id>/reason.json                 why, written last (the batch is complete)

Why one file per (layer, market, session): a partition is the unit Dagster materializes, backfills and
replaces, so writing it is a single object put (atomic on both stores) and re-running a partition replaces it:
writes are idempotent with no cleanup of stale parts. Frames are serialized with polars in memory and put in
one call.

DuckDB (``tradepulse-cli sql``): for a local store DuckDB reads the files directly with a glob and hive
partitioning. For S3, :func:`register_duckdb_view` loads the partitions with polars and hands DuckDB an Arrow
table with the same columns: DuckDB reads S3 only through its ``httpfs`` extension, which it downloads at
runtime (not possible on an air-gapped deployment) and which would need the store's endpoint and credentials
configured a second time; polars reads the object with the store's own ``storage_options``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import polars as pl

from tradepulse_assets.storage.home import validate_identifier
from tradepulse_assets.storage.object_store import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    validate_key,
)

__all__ = [
    "BASE_LAYERS",
    "LakeError",
    "PARQUET_CONTENT_TYPE",
    "delete_partition",
    "duckdb_view_sql",
    "feature_layer",
    "layer_prefix",
    "list_markets",
    "list_quarantine_batches",
    "list_sessions",
    "partition_key",
    "quarantine_key",
    "quarantine_prefix",
    "quarantine_reason_key",
    "read_frame",
    "read_frames",
    "read_quarantine_reason",
    "register_duckdb_view",
    "validate_layer",
    "write_frame",
    "write_quarantine",
]

LAKE_ROOT = "lake"
QUARANTINE_ROOT = "quarantine"
BASE_LAYERS = ("landing", "staging", "production")
PART_FILE = "part-0.parquet"
REASON_FILE = "reason.json"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"

_FEATURE_NAME = re.compile(r"^[a-z0-9_]+$")
_MARKET = re.compile(r"^[A-Za-z0-9_]+$")
_SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SESSION_SEGMENT = re.compile(r"/session=(\d{4}-\d{2}-\d{2})/" + re.escape(PART_FILE) + "$")


class LakeError(StorageError, ValueError):
    """A bad layer, market, session or frame for the lake, or an empty layer where data was expected."""


# ------------------------------------------------------------------------------------------- layout


def feature_layer(name: str) -> str:
    """The layer name of an indicator feature set, ``features/<name>`` (name: ``[a-z0-9_]+``)."""
    if not _FEATURE_NAME.match(name or ""):
        raise LakeError(f"invalid feature name {name!r}: expected [a-z0-9_]+")
    return f"features/{name}"


def validate_layer(layer: str) -> str:
    """Return ``layer`` if it is one of :data:`BASE_LAYERS` or ``features/<name>``."""
    if layer in BASE_LAYERS:
        return layer
    if layer.startswith("features/"):
        return feature_layer(layer.removeprefix("features/"))
    raise LakeError(
        f"unknown lake layer {layer!r}: expected one of {', '.join(BASE_LAYERS)} or features/<name>"
    )


def _market(market: str) -> str:
    if not isinstance(market, str) or not _MARKET.match(market):
        raise LakeError(f"invalid market id {market!r}: expected [A-Za-z0-9_]+")
    return market


def _session(session: date | str) -> date:
    if isinstance(session, datetime):
        raise LakeError(f"session {session!r} must be a date, not a datetime")
    if isinstance(session, date):
        return session
    try:
        return date.fromisoformat(session)
    except (TypeError, ValueError):
        raise LakeError(f"invalid session {session!r}: expected YYYY-MM-DD") from None


def layer_prefix(layer: str) -> str:
    return f"{LAKE_ROOT}/{validate_layer(layer)}/"


def _market_prefix(layer: str, market: str) -> str:
    return f"{layer_prefix(layer)}market={_market(market)}/"


def partition_key(layer: str, market: str, session: date | str) -> str:
    """``lake/<layer>/market=<M>/session=<YYYY-MM-DD>/part-0.parquet``."""
    return f"{_market_prefix(layer, market)}session={_session(session).isoformat()}/{PART_FILE}"


# -------------------------------------------------------------------------------------------- frames


def _check_partition_columns(df: pl.DataFrame, market: str, session: date, key: str) -> None:
    """Hive partitioning makes the path win over a same-named column: refuse a column that disagrees."""
    expected = {"market": market, "session": session.isoformat()}
    for column, value in expected.items():
        if column in df.columns and df.height:
            values = df.get_column(column).cast(pl.String)
            bad = int((values != value).fill_null(True).sum())
            if bad:
                raise LakeError(
                    f"cannot write {key}: column {column!r} has {bad} row(s) not equal to "
                    f"the partition's {value!r}"
                )


def write_frame(
    store: ObjectStore,
    layer: str,
    market: str,
    session: date | str,
    df: pl.DataFrame,
    *,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Replace one partition with ``df`` (one atomic put; a re-run replaces it) and return its key."""
    day = _session(session)
    key = partition_key(layer, market, day)
    _check_partition_columns(df, market, day, key)
    buffer = io.BytesIO()
    df.write_parquet(buffer, compression="zstd", statistics=True)
    store.put_bytes(key, buffer.getvalue(), tags=tags, content_type=PARQUET_CONTENT_TYPE)
    return key


def read_frame(store: ObjectStore, layer: str, market: str, session: date | str) -> pl.DataFrame:
    """The frame of one partition; :class:`ObjectNotFound` (naming its key) if it was never written."""
    key = partition_key(layer, market, session)
    data = store.get_bytes(key)
    try:
        return pl.read_parquet(io.BytesIO(data))
    except Exception as error:  # polars raises several types for a corrupt file
        raise LakeError(f"partition {key} in {store.describe()} is not readable Parquet: {error}") from error


def read_frames(
    store: ObjectStore,
    layer: str,
    market: str,
    sessions: Iterable[date | str],
    *,
    skip_missing: bool = False,
) -> pl.DataFrame:
    """Concatenate partitions in the given session order.

    Optional columns missing from some sessions become null (``how="diagonal"``); a column whose type differs
    between sessions raises. A missing partition raises unless ``skip_missing``.
    """
    frames = []
    for session in sessions:
        try:
            frames.append(read_frame(store, layer, market, session))
        except ObjectNotFound:
            if not skip_missing:
                raise
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal")


def list_sessions(store: ObjectStore, layer: str, market: str) -> list[date]:
    """Sessions with a written partition, ascending."""
    sessions = set()
    for key in store.list_keys(_market_prefix(layer, market)):
        match = _SESSION_SEGMENT.search(key)
        if match:
            sessions.add(date.fromisoformat(match.group(1)))
    return sorted(sessions)


def list_markets(store: ObjectStore, layer: str) -> list[str]:
    """Markets with at least one partition in ``layer``, sorted."""
    prefix = layer_prefix(layer)
    markets = set()
    for key in store.list_keys(prefix):
        segment = key[len(prefix) :].split("/", 1)[0]
        if segment.startswith("market=") and key.endswith("/" + PART_FILE):
            markets.add(segment.removeprefix("market="))
    return sorted(markets)


def delete_partition(store: ObjectStore, layer: str, market: str, session: date | str) -> bool:
    """Remove one partition; return whether it existed."""
    return store.delete(partition_key(layer, market, session))


# -------------------------------------------------------------------------------------------- DuckDB


def _sql_identifier(name: str) -> str:
    if not _SQL_IDENTIFIER.match(name or ""):
        raise LakeError(f"invalid view name {name!r}: expected [A-Za-z_][A-Za-z0-9_]*")
    return name


def duckdb_view_sql(store: LocalObjectStore, layer: str, view_name: str) -> str:
    """``CREATE OR REPLACE VIEW`` over a local layer: a glob with hive partitioning (``market``, ``session``).

    Only for local stores (DuckDB cannot reach S3 here); use :func:`register_duckdb_view` for either kind.
    """
    if not isinstance(store, LocalObjectStore):
        raise LakeError(
            f"duckdb_view_sql needs a local store, got {store.describe()}; use register_duckdb_view"
        )
    pattern = store.path(layer_prefix(layer) + f"market=*/session=*/{PART_FILE}")
    literal = str(pattern).replace("'", "''")
    return (
        f"CREATE OR REPLACE VIEW {_sql_identifier(view_name)} AS SELECT * FROM read_parquet('{literal}', "
        "hive_partitioning = true, union_by_name = true, "
        "hive_types = {'market': VARCHAR, 'session': DATE})"
    )


def register_duckdb_view(
    con: Any,
    store: ObjectStore,
    layer: str,
    view_name: str,
    *,
    markets: Iterable[str] | None = None,
) -> None:
    """Make ``view_name`` query ``layer`` in DuckDB connection ``con``, with ``market``/``session`` columns.

    Local store: a view over the files (lazy; filters on market/session prune files). S3 store: the
    partitions of ``markets`` (default all) are loaded with polars and registered as an Arrow table; this
    holds the layer in memory, so pass ``markets`` for big layers. Raises :class:`LakeError` if the layer has
    no partitions.
    """
    chosen = sorted(markets) if markets is not None else list_markets(store, layer)
    if not any(list_sessions(store, layer, market) for market in chosen):
        raise LakeError(
            f"lake layer {layer!r} has no partitions for {chosen or 'any market'} in {store.describe()}"
        )
    if isinstance(store, LocalObjectStore) and markets is None:
        con.execute(duckdb_view_sql(store, layer, view_name))
        return
    frames = []
    for market in chosen:
        for session in list_sessions(store, layer, market):
            frame = read_frame(store, layer, market, session).drop(["market", "session"], strict=False)
            frames.append(frame.with_columns(market=pl.lit(market), session=pl.lit(session, dtype=pl.Date)))
    table = pl.concat(frames, how="diagonal").to_arrow()
    con.register(_sql_identifier(view_name), table)


# ----------------------------------------------------------------------------------------- quarantine


def quarantine_prefix(incident_id: str, batch_id: str) -> str:
    """``quarantine/<incident_id>/<batch_id>/``; both ids ``[A-Za-z0-9_.-]+`` (never ``/`` or ``|``)."""
    incident = validate_identifier(incident_id, "incident id")
    batch = validate_identifier(batch_id, "batch id")
    return f"{QUARANTINE_ROOT}/{incident}/{batch}/"


def quarantine_key(incident_id: str, batch_id: str, file_name: str) -> str:
    """Where the original bytes of ``file_name`` (a bare file name) go."""
    if "/" in file_name or file_name == REASON_FILE:
        raise LakeError(f"quarantined file name {file_name!r} must be a bare name other than {REASON_FILE!r}")
    return validate_key(quarantine_prefix(incident_id, batch_id) + file_name)


def quarantine_reason_key(incident_id: str, batch_id: str) -> str:
    return quarantine_prefix(incident_id, batch_id) + REASON_FILE


def write_quarantine(
    store: ObjectStore,
    incident_id: str,
    batch_id: str,
    files: Mapping[str, bytes],
    reason: Mapping[str, Any],
    *,
    tags: Mapping[str, str] | None = None,
) -> list[str]:
    """Store the original bytes of a batch, tagged with the incident, then ``reason.json`` (last = complete).

    ``reason.json`` holds ``reason`` plus the ids and each file's size and sha256. Re-running replaces the
    batch in place. Returns the keys written, reason last.
    """
    all_tags = {**(tags or {}), "incident_id": incident_id, "batch_id": batch_id}
    keys = []
    listing = []
    for name, data in sorted(files.items()):
        key = quarantine_key(incident_id, batch_id, name)
        store.put_bytes(key, data, tags=all_tags)
        keys.append(key)
        listing.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    document = {**reason, "incident_id": incident_id, "batch_id": batch_id, "files": listing}
    reason_key = quarantine_reason_key(incident_id, batch_id)
    body = json.dumps(document, sort_keys=True, indent=2, default=str).encode()
    store.put_bytes(reason_key, body, tags=all_tags, content_type="application/json")
    keys.append(reason_key)
    return keys


def read_quarantine_reason(store: ObjectStore, incident_id: str, batch_id: str) -> dict[str, Any]:
    return dict(json.loads(store.get_bytes(quarantine_reason_key(incident_id, batch_id))))


def list_quarantine_batches(store: ObjectStore, incident_id: str | None = None) -> list[tuple[str, str]]:
    """Complete batches (those with ``reason.json``) as ``(incident_id, batch_id)``, sorted."""
    prefix = f"{QUARANTINE_ROOT}/" + (
        f"{validate_identifier(incident_id, 'incident id')}/" if incident_id else ""
    )
    batches = []
    for key in store.list_keys(prefix):
        parts = key.split("/")
        if len(parts) == 4 and parts[3] == REASON_FILE:
            batches.append((parts[1], parts[2]))
    return sorted(batches)
