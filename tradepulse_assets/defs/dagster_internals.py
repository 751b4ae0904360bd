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
- **A sensor-launched Dagster backfill** (``RunRequest.for_asset_graph_subset`` with an ``AssetGraphSubset``,
  one entry on the Backfills page) would belong here too: ``AssetGraphSubset`` is only in ``dagster._core``.
"""

from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

__all__ = ["CheckExecutionStatus", "CheckTarget"]

#: Status of an asset-check execution record (planned, succeeded, failed, skipped).
CheckExecutionStatus = AssetCheckExecutionRecordStatus

#: The materialisation a check evaluation judged (storage id, run id, timestamp).
CheckTarget = AssetCheckEvaluationTargetMaterializationData
