"""The one module that touches Dagster APIs which are not public in Dagster 1.13, each with the reason.

Everything else in the code location uses ``import dagster as dg`` and the ``dagster-*`` integrations'
public modules (the import-rule test refuses private imports elsewhere). When Dagster makes one of these
public, import it from ``dagster`` here; nothing else changes.

- **Asset-check execution status.** The exit criteria read the latest evaluation of each required check per
  session through the public ``DagsterInstance.event_log_storage`` (``get_latest_asset_check_execution_by_key``
  and ``get_asset_check_partition_info``), but the status enum of the records they return
  (``AssetCheckExecutionRecordStatus``) is only in ``dagster._core``.
- **The materialisation a check verdict was about.** A range run records each session's check verdicts as
  ``AssetCheckEvaluation`` events (``AssetCheckResult`` would attribute them to the run's one partition key)
  and points each at the session's materialisation, as Dagster does for a single-session run; the record type
  (``AssetCheckEvaluationTargetMaterializationData``) is only in ``dagster._core``.
- **The embedded event log's SQLite files.** Dagster's SQLite event log opens a new connection for every write
  (a range run writes about 70 per session) and, being the only one open, each close checkpoints the
  write-ahead log into the database and deletes it. A range run keeps one idle connection to its files open
  meanwhile (``event_log_files_held_open``), which needs the storage class and its shard paths.
- **The latest check execution per (check, session) in one query.** The public
  ``get_asset_check_partition_info`` runs one query per check key, each joined with the asset's
  materialisations; on the embedded SQLite storage each also opens a new engine and connection. After a
  market-wide outage the exit-criteria sensor needs 64 keys at once: those queries were most of its first
  tick. ``latest_check_executions`` reads Dagster's ``asset_check_executions`` table with the same rule (the
  row with the highest id per check and partition, among rows with an evaluation event) in one query; any
  other storage gets the public call.
- **A sensor-launched Dagster backfill** (``RunRequest.for_asset_graph_subset`` with an ``AssetGraphSubset``,
  one entry on the Backfills page) would belong here too: ``AssetGraphSubset`` is only in ``dagster._core``.
"""

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage

__all__ = ["CheckExecutionStatus", "CheckTarget", "event_log_files_held_open", "latest_check_executions"]

#: Status of an asset-check execution record (planned, succeeded, failed, skipped).
CheckExecutionStatus = AssetCheckExecutionRecordStatus

#: The materialisation a check evaluation judged (storage id, run id, timestamp).
CheckTarget = AssetCheckEvaluationTargetMaterializationData


@contextmanager
def event_log_files_held_open(instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """While it lasts, one idle connection to the SQLite event log's files of this run (the run's shard and
    the cross-run index) stays open, so that closing Dagster's connection after each write no longer
    checkpoints and deletes the write-ahead log (SQLite does that when the last connection to a WAL database
    closes).

    Commits stay as durable as before (each still syncs the log); SQLite checkpoints the log every 1,000
    pages meanwhile, and once more when this ends. After its one read the connection is idle, outside any
    transaction, and holds no lock: checkpoints complete and other processes read and write as usual. Any
    other event storage (PostgreSQL in production) is left as it is.
    """
    storage = instance.event_log_storage
    with ExitStack() as held:
        if isinstance(storage, SqliteEventLogStorage):
            for shard in (INDEX_SHARD_NAME, run_id):
                path = storage.path_for_shard(shard)
                if os.path.exists(path):  # never create a shard Dagster did not
                    connection = held.enter_context(closing(sqlite3.connect(path)))
                    connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the log
        yield


def latest_check_executions(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey], partitions: Sequence[str]
) -> list[tuple[dg.AssetCheckKey, str, CheckExecutionStatus, str | None]]:
    """``(key, partition, status, run id)`` of the latest execution of each of ``keys`` on each of
    ``partitions`` that has one: what ``get_asset_check_partition_info`` says, in one query."""
    storage = instance.event_log_storage
    if not keys or not partitions:
        return []
    if not isinstance(storage, SqlEventLogStorage):
        infos = storage.get_asset_check_partition_info(list(keys), partition_keys=list(partitions))
        return [(info.check_key, info.partition_key, info.latest_execution_status, info.latest_planned_run_id)
                for info in infos if info.partition_key is not None]
    table = AssetCheckExecutionsTable
    wanted = {(key.asset_key.to_string(), key.name): key for key in keys}
    latest = (
        sa.select(sa.func.max(table.c.id))
        .where(
            table.c.asset_key.in_(sorted({asset for asset, _ in wanted})),
            table.c.check_name.in_(sorted({name for _, name in wanted})),
            table.c.partition.in_(list(partitions)),
            table.c.evaluation_event_storage_id.isnot(None),  # as Dagster: old planned rows may lack it
        )
        .group_by(table.c.asset_key, table.c.check_name, table.c.partition)
    )
    query = sa.select(table.c.asset_key, table.c.check_name, table.c.partition, table.c.execution_status,
                      table.c.run_id).where(table.c.id.in_(latest))
    with storage.index_connection() as connection:
        rows = connection.execute(query).fetchall()
    return [(wanted[(asset, name)], partition, CheckExecutionStatus(status), run_id)
            for asset, name, partition, status, run_id in rows if (asset, name) in wanted]
