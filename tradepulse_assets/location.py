"""The Dagster code location: ``dagster dev -w workspace.yaml`` (and ``dagster api grpc``) load ``defs`` here.

It sits above every layer because it assembles them: the platform's definitions (``defs/``) and the drills'
follow-up job and schedule (``drills/``), which build definitions themselves and so cannot live in ``defs/``.
"""

import dagster as dg

from tradepulse_assets.defs.definitions import build_definitions
from tradepulse_assets.drills.followups import chaos_followups_job, chaos_followups_schedule
from tradepulse_assets.markets import MarketRegistry
from tradepulse_assets.pipeline.settings import Settings


def build_code_location(
    registry: MarketRegistry | None = None, settings: Settings | None = None
) -> dg.Definitions:
    platform = build_definitions(registry, settings)
    drills = dg.Definitions(jobs=[chaos_followups_job], schedules=[chaos_followups_schedule])
    return dg.Definitions.merge(platform, drills)


defs = build_code_location()
