"""The vendor's manifests as an upstream asset of each market's bars, partitioned by the same sessions.

Materialized partition = the vendor published the session (reported by
``defs/sensors/vendor_availability.py``); missing = not published yet. It sits before ``landed_bars`` on the
lineage, so the UI answers "can this missing session land?" on the page where it is launched.
"""

import dagster as dg

from tradepulse_assets.defs.partitions import session_partitions
from tradepulse_assets.markets import Market


def vendor_manifests_key(market: Market) -> dg.AssetKey:
    return dg.AssetKey([market.market_id.lower(), "vendor_manifests"])


def vendor_manifests_spec(market: Market) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=vendor_manifests_key(market),
        partitions_def=session_partitions(market),
        group_name=market.market_id.lower(),
        kinds={"json"},
        description=(
            f"The {market.market_id} vendor's manifests, one partition per session: materialized = published "
            "(metadata: revision, condition, files, records), missing = not published yet, so landing it would "
            "fail. Reported by the vendor availability sensor."
        ),
    )
