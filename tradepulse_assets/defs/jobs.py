"""Jobs: one partitioned ingestion job per market (landing -> staging -> production -> features -> consumers),
and the quarantine job. Sensors and the UI launch these; the market tag feeds the run coordinator's
per-market concurrency limit. Periodic work (the incident review here, the drills' chaos follow-ups) is a job
of one op on a schedule: ``scheduled_op``."""

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


def scheduled_op(
    op: dg.OpDefinition, *, job_name: str, job_description: str, schedule_name: str, cron_schedule: str,
    schedule_description: str,
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """A job running ``op`` alone and its schedule: on UTC time and running from the first start, so periodic
    work needs no one to switch it on."""

    @dg.job(name=job_name, description=job_description)
    def job():
        op()

    schedule = dg.ScheduleDefinition(
        name=schedule_name,
        job=job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=schedule_description,
    )
    return job, schedule
