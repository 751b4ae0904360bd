"""The one module that touches Dagster APIs which are not public in Dagster 1.13, each with the reason.

Everything else in the code location uses ``import dagster as dg`` and the ``dagster-*`` integrations'
public modules (the import-rule test refuses private imports elsewhere). When Dagster makes one of these
public, import it from ``dagster`` here and keep the signature below; nothing else changes.

- **Per-partition asset-check results.** The exit criteria need, for each affected session, the latest
  evaluation of each required check. ``get_latest_asset_check_execution_by_key`` is reachable from the
  public ``DagsterInstance``, but its ``partition_filter`` argument (``PartitionKeyFilter``) and the status
  enum of the returned records (``AssetCheckExecutionRecordStatus``) are only in ``dagster._core``.
- **A sensor-launched Dagster backfill** (``RunRequest.for_asset_graph_subset`` with an ``AssetGraphSubset``,
  one entry on the Backfills page) would belong here too: ``AssetGraphSubset`` is only in ``dagster._core``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

__all__ = ["CheckVerdict", "latest_check_verdicts"]


@dataclass(frozen=True)
class CheckVerdict:
    """The latest evaluation of one check on one partition; ``passed`` is None while none finished."""

    passed: bool | None
    run_id: str | None


def latest_check_verdicts(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey], partition: str
) -> dict[dg.AssetCheckKey, CheckVerdict]:
    """One bulk read of the latest execution of each check in ``keys`` for the partition ``partition``."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        list(keys), partition_filter=PartitionKeyFilter(key=partition)
    )
    verdicts = {}
    for key in keys:
        record = latest.get(key)
        if record is None:
            verdicts[key] = CheckVerdict(None, None)
            continue
        passed = {
            AssetCheckExecutionRecordStatus.SUCCEEDED: True,
            AssetCheckExecutionRecordStatus.FAILED: False,
        }.get(record.status)
        verdicts[key] = CheckVerdict(passed, record.run_id)
    return verdicts
