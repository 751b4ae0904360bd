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
- **A sensor-launched Dagster backfill** (``RunRequest.for_asset_graph_subset`` with an ``AssetGraphSubset``,
  one entry on the Backfills page) would belong here too: ``AssetGraphSubset`` is only in ``dagster._core``.
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage

__all__ = ["CheckExecutionStatus", "CheckTarget", "event_log_files_held_open"]

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
