"""What the vendor has published, per session, in the UI: the ``<market>/vendor_manifests`` asset.

Partitions of the bar assets exist for every closed session, but only published ones can land. So the vendor
is modelled as an upstream asset with the same session partitions, and this sensor reports a materialization
of a partition when the vendor publishes (or restates, or changes the condition of) a session: its metadata
is the manifest (revision, condition, files, records, published at) and its data version is the revision.
In the UI a session the vendor has published is *materialized* on ``vendor_manifests``; one it has not is
*missing* there, which is what "not published" looks like, next to ``landed_bars`` on the lineage.

A tick lists the vendor's sessions and reads only the manifests it has not seen at this revision (the cursor
keeps ``session -> revision:condition``), so it stays cheap as history grows.
"""

import json

import dagster as dg

from tradepulse_assets.defs.assets.vendor_manifests import vendor_manifests_key
from tradepulse_assets.defs.partitions import key_of_session, session_partition_exists
from tradepulse_assets.defs.resources import VendorResource
from tradepulse_assets.feeds.connectors import VendorError
from tradepulse_assets.feeds.manifest import ManifestError
from tradepulse_assets.markets import Market

MAX_MANIFESTS_PER_TICK = 60  # a first tick on a long history reads it over a few ticks


def availability_sensor_name(market: Market) -> str:
    return f"{market.market_id.lower()}_vendor_availability_sensor"


def manifest_event(market: Market, manifest) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=vendor_manifests_key(market),
        partition=key_of_session(manifest.session),
        description=f"{market.market_id} {manifest.session}: published, revision {manifest.revision}",
        metadata={
            "revision": manifest.revision,
            "condition": manifest.condition,
            "files": len(manifest.files),
            "records": manifest.record_count,
            "published_at": manifest.published_at.isoformat(),
        },
        tags={"dagster/data_version": f"r{manifest.revision}"},
    )


def build_vendor_availability_sensor(market: Market, min_interval: int | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name=availability_sensor_name(market),
        minimum_interval_seconds=min_interval or 30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Reports each {market.market_id} session the vendor publishes on vendor_manifests.",
    )
    def vendor_availability_sensor(context: dg.SensorEvaluationContext, vendor: VendorResource):
        seen = json.loads(context.cursor) if context.cursor else {}
        connector = vendor.connector()
        try:
            sessions = connector.list_sessions(market.market_id)
        except VendorError as exc:
            return dg.SkipReason(f"{market.market_id} vendor unreachable: {exc}")
        events = []
        for session in sorted(sessions, reverse=True):  # newest first: what an operator looks at
            if len(events) >= MAX_MANIFESTS_PER_TICK:
                break
            if not session_partition_exists(market, session):
                continue
            try:
                manifest = connector.read_manifest(market.market_id, session)
            except (VendorError, ManifestError) as exc:  # landing will quarantine it; nothing to report here
                context.log.warning(f"{market.market_id} {session}: unreadable manifest: {exc}")
                continue
            if manifest is None:
                continue
            state = f"r{manifest.revision}:{manifest.condition}"
            if seen.get(session.isoformat()) == state:
                continue
            seen[session.isoformat()] = state
            events.append(manifest_event(market, manifest))
        if not events:
            return dg.SkipReason(f"no new {market.market_id} manifest")
        return dg.SensorResult(asset_events=events, cursor=json.dumps(seen, sort_keys=True))

    return vendor_availability_sensor
