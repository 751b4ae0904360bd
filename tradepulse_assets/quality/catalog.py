"""The data-health catalog: every gate's verdict per market and session, as Parquet queryable with DuckDB.

The runbook's first triage step ("confirm scope ... using the metadata store") asks which markets, sessions
and gates are unhealthy; one small Parquet file per (market, session) answers it with any tool, and a
re-run of a partition replaces its file atomically (temporary name in the same directory, then
``os.replace``), so readers see the old verdicts or the new ones, never half a file. Layout:

    <root>/market=<M>/session=<YYYY-MM-DD>.parquet

``health_catalog_sql(root)`` returns the DuckDB statement creating the documented view
``data_health(market, session, gate, passed, blocking, summary, counts_json, evaluated_at, run_id)``.
The files also carry ``evaluated``, ``evidence_json`` and ``gap_windows_json`` for whoever needs the detail.

Where: :class:`HealthCatalog` keeps the files in an object store under a prefix. The pipeline writes it to
:func:`~tradepulse_assets.storage.object_store.runbook_store`, i.e. ``$TRADEPULSE_HOME/observability/catalog/
data_health`` in the embedded default (DuckDB reads the files in place) and the lake's bucket in the production
profile, so a gate verdict written by a run worker on one machine is visible to the CLI on another (DuckDB
then gets the rows as Arrow, read with the store's own credentials). The path functions below are the same
catalog over a plain directory.
"""

import datetime as dt
import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tradepulse_assets.quality.results import GateResult, jsonable
from tradepulse_assets.storage.home import HEALTH_CATALOG
from tradepulse_assets.storage.object_store import LocalObjectStore, ObjectStore, runbook_store

VIEW_COLUMNS = (
    "market",
    "session",
    "gate",
    "passed",
    "blocking",
    "summary",
    "counts_json",
    "evaluated_at",
    "run_id",
)
CATALOG_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.String(),
    "session": pl.Date(),
    "gate": pl.String(),
    "passed": pl.Boolean(),
    "blocking": pl.Boolean(),
    "summary": pl.String(),
    "counts_json": pl.String(),
    "evaluated_at": pl.Datetime("us", "UTC"),
    "run_id": pl.String(),
    "evaluated": pl.Boolean(),
    "evidence_json": pl.String(),
    "gap_windows_json": pl.String(),
}
_MARKET_ID = re.compile(r"^[A-Z0-9]+$")


class HealthCatalogError(ValueError):
    """A catalog write or read with a bad market, session or timestamp; the message names the partition."""


def _validate(market: str, session: dt.date) -> None:
    if not _MARKET_ID.match(market):
        raise HealthCatalogError(
            f"health catalog: market id {market!r} must be upper-case letters and digits"
        )
    if isinstance(session, dt.datetime) or not isinstance(session, dt.date):
        raise HealthCatalogError(f"health catalog: session {session!r} for market {market} must be a date")


def health_key(market: str, session: dt.date) -> str:
    """``market=<M>/session=<YYYY-MM-DD>.parquet``: one partition's file, relative to the catalog's root."""
    _validate(market, session)
    return f"market={market}/session={session.isoformat()}.parquet"


def health_path(root: str | os.PathLike, market: str, session: dt.date) -> Path:
    return Path(root).joinpath(*health_key(market, session).split("/"))


def health_frame(
    market: str, session: dt.date, results: Sequence[GateResult], evaluated_at: dt.datetime, run_id: str
) -> pl.DataFrame:
    """The catalog rows of one partition's gate results."""
    if evaluated_at.tzinfo is None:
        raise HealthCatalogError(
            f"health catalog {market} {session}: evaluated_at has no time zone; pass UTC"
        )
    at = evaluated_at.astimezone(dt.UTC)
    rows = [
        {
            "market": market,
            "session": session,
            "gate": r.gate,
            "passed": r.passed,
            "blocking": r.blocking,
            "summary": r.summary,
            "counts_json": json.dumps(jsonable(r.counts), sort_keys=True),
            "evaluated_at": at,
            "run_id": run_id,
            "evaluated": r.evaluated,
            "evidence_json": json.dumps(jsonable(r.evidence)),
            "gap_windows_json": json.dumps([w.to_dict() for w in r.gap_windows]),
        }
        for r in results
    ]
    return pl.DataFrame(rows, schema=CATALOG_SCHEMA)


_HEALTH_FILE = re.compile(r"(^|/)market=[A-Z0-9]+/session=\d{4}-\d{2}-\d{2}\.parquet$")


class HealthCatalog:
    """The catalog's files in ``store`` under ``prefix`` (``""``: the store's root)."""

    def __init__(self, store: ObjectStore, prefix: str = "") -> None:
        self.store = store
        self.prefix = prefix.strip("/")

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def write(
        self, market: str, session: dt.date, results: Sequence[GateResult], evaluated_at: dt.datetime, run_id: str
    ) -> str:
        """Replace the (market, session) file with these results, atomically; returns its key."""
        key = self._key(health_key(market, session))
        buffer = io.BytesIO()
        health_frame(market, session, results, evaluated_at, run_id).write_parquet(buffer)
        self.store.put_bytes(key, buffer.getvalue(), content_type="application/vnd.apache.parquet")
        return key

    def keys(self, market: str | None = None) -> list[str]:
        """The catalog's files (of one market when given), sorted."""
        if market is not None:
            _validate(market, dt.date(2000, 1, 1))
        below = self._key(f"market={market}/" if market is not None else "")
        return sorted(k for k in self.store.list_keys(below) if _HEALTH_FILE.search(k))

    def read(self, market: str | None = None) -> pl.DataFrame:
        """Every catalog row (of one market when given), sorted by market, session and gate."""
        keys = self.keys(market)
        if not keys:
            return pl.DataFrame(schema=CATALOG_SCHEMA)
        frames = [pl.read_parquet(io.BytesIO(self.store.get_bytes(k))) for k in keys]
        return pl.concat(frames, how="vertical").select(list(CATALOG_SCHEMA)).sort("market", "session", "gate")

    def register_duckdb(self, con) -> None:
        """Create the view ``data_health`` on DuckDB connection ``con``: files in place when local, else Arrow."""
        if isinstance(self.store, LocalObjectStore):
            root = self.store.root.joinpath(*self.prefix.split("/")) if self.prefix else self.store.root
            con.execute(health_catalog_sql(root))
            return
        con.register("data_health_rows", self.read().select(list(VIEW_COLUMNS)).to_arrow())
        con.execute("CREATE OR REPLACE VIEW data_health AS SELECT * FROM data_health_rows")


def health_catalog_for(lake: ObjectStore) -> HealthCatalog:
    """The profile's catalog: under ``$TRADEPULSE_HOME`` beside a local lake, in the lake's bucket beside S3."""
    return HealthCatalog(runbook_store(lake), HEALTH_CATALOG)


def write_health(
    root: str | os.PathLike,
    market: str,
    session: dt.date,
    results: Sequence[GateResult],
    evaluated_at: dt.datetime,
    run_id: str,
) -> Path:
    """Replace the (market, session) file under directory ``root`` with these results, atomically."""
    HealthCatalog(LocalObjectStore(root)).write(market, session, results, evaluated_at, run_id)
    return health_path(root, market, session)


def _files(root: str | os.PathLike, market: str | None) -> list[Path]:
    return [Path(root).joinpath(*k.split("/")) for k in HealthCatalog(LocalObjectStore(root)).keys(market)]


def read_health(root: str | os.PathLike, market: str | None = None) -> pl.DataFrame:
    """Every catalog row under directory ``root`` (of one market when given), sorted by market, session, gate."""
    return HealthCatalog(LocalObjectStore(root)).read(market)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def health_catalog_sql(root: str | os.PathLike) -> str:
    """DuckDB SQL creating (or replacing) the view ``data_health`` over the catalog under ``root``.

    DuckDB fails to bind a glob that matches no file, so an empty catalog gives an empty view of the same
    columns; call again after the first write (the view is cheap to recreate).
    """
    columns = ", ".join(VIEW_COLUMNS)
    if not _files(root, None):
        empty = ", ".join(
            f"CAST(NULL AS {t}) AS {c}"
            for c, t in zip(
                VIEW_COLUMNS,
                (
                    "VARCHAR",
                    "DATE",
                    "VARCHAR",
                    "BOOLEAN",
                    "BOOLEAN",
                    "VARCHAR",
                    "VARCHAR",
                    "TIMESTAMP WITH TIME ZONE",
                    "VARCHAR",
                ),
            )
        )
        return f"CREATE OR REPLACE VIEW data_health AS SELECT {empty} WHERE false"
    pattern = _sql_string(str(Path(root).resolve() / "market=*" / "session=*.parquet"))
    return (
        f"CREATE OR REPLACE VIEW data_health AS SELECT {columns} "
        f"FROM read_parquet({pattern}, hive_partitioning = false, union_by_name = true)"
    )
