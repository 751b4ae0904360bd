"""The data-health catalog: every gate's verdict per market and session, as Parquet queryable with DuckDB.

The runbook's first triage step ("confirm scope ... using the metadata store") asks which markets, sessions
and gates are unhealthy; one small Parquet file per (market, session) answers it with any tool, and a
re-run of a partition replaces its file atomically (temporary name in the same directory, then
``os.replace``), so readers see the old verdicts or the new ones, never half a file. Layout:

    <root>/market=<M>/session=<YYYY-MM-DD>.parquet

``health_catalog_sql(root)`` returns the DuckDB statement creating the documented view
``data_health(market, session, gate, passed, blocking, summary, counts_json, evaluated_at, run_id)``.
The files also carry ``evaluated``, ``evidence_json`` and ``gap_windows_json`` for whoever needs the detail.
"""

import datetime as dt
import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tradepulse_assets.core.io import atomic_write
from tradepulse_assets.quality.results import GateResult, jsonable

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


def health_path(root: str | os.PathLike, market: str, session: dt.date) -> Path:
    if not _MARKET_ID.match(market):
        raise HealthCatalogError(
            f"health catalog: market id {market!r} must be upper-case letters and digits"
        )
    if isinstance(session, dt.datetime) or not isinstance(session, dt.date):
        raise HealthCatalogError(f"health catalog: session {session!r} for market {market} must be a date")
    return Path(root) / f"market={market}" / f"session={session.isoformat()}.parquet"


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


def write_health(
    root: str | os.PathLike,
    market: str,
    session: dt.date,
    results: Sequence[GateResult],
    evaluated_at: dt.datetime,
    run_id: str,
) -> Path:
    """Replace the (market, session) file with these results, atomically; returns its path."""
    path = health_path(root, market, session)
    buffer = io.BytesIO()
    health_frame(market, session, results, evaluated_at, run_id).write_parquet(buffer)
    return atomic_write(path, buffer.getvalue(), fsync=True)


def _files(root: str | os.PathLike, market: str | None) -> list[Path]:
    base = Path(root)
    if market is not None:
        health_path(root, market, dt.date(2000, 1, 1))  # validates the market id
        return sorted((base / f"market={market}").glob("session=*.parquet"))
    return sorted(base.glob("market=*/session=*.parquet"))


def read_health(root: str | os.PathLike, market: str | None = None) -> pl.DataFrame:
    """Every catalog row (of one market when given), sorted by market, session and gate."""
    files = _files(root, market)
    if not files:
        return pl.DataFrame(schema=CATALOG_SCHEMA)
    frame = pl.concat([pl.read_parquet(f) for f in files], how="vertical")
    return frame.select(list(CATALOG_SCHEMA)).sort("market", "session", "gate")


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
