"""Jobs: one partitioned ingestion job per market (landing -> staging -> production -> features -> consumers),
and the quarantine job. Sensors and the UI launch these; the market tag feeds the run coordinator's
per-market concurrency limit."""

import warnings

import dagster as dg

from tradepulse_assets.defs.assets.bars import MARKET_TAG
from tradepulse_assets.markets import Market


# The bar assets run many sessions as ranges (bars.SESSION_RANGE_POLICY); features and consumers stay one run
# per session (a range run records no bar output for its later steps, so they could not run in it). An ingest
# job holds both, so Dagster warns at every load and uses one session per run for the job's own backfills:
# meant.
warnings.filterwarnings("ignore",
                        message=r"Asset job \w+_ingest materializes assets with varying BackfillPolicies")


def ingest_job_name(market: Market) -> str:
    return f"{market.market_id.lower()}_ingest"


def build_ingest_job(market: Market):
    return dg.define_asset_job(
        name=ingest_job_name(market),
        selection=dg.AssetSelection.groups(market.market_id.lower()),
        tags={MARKET_TAG: market.market_id},
        description=f"Land, gate, promote and derive features for one {market.market_id} session.",
    )


quarantine_job = dg.define_asset_job(
    name="quarantine_batch",
    selection=dg.AssetSelection.assets(["quarantine", "quarantine_batches"]),
    description="Copy a quarantined batch's original bytes under quarantine/<incident>/<batch>/ with tags.",
)
