"""The UI tells published from unpublished sessions (issue #15): the vendor availability sensor reports each
published session on ``<market>/vendor_manifests`` once per revision, and batch partitions only exist once the
session has closed."""

import datetime as dt

import dagster as dg

from tradepulse_assets.defs.assets.vendor_manifests import vendor_manifests_key
from tradepulse_assets.defs.partitions import session_partitions
from tradepulse_assets.defs.resources import VendorResource
from tradepulse_assets.defs.sensors.vendor_availability import build_vendor_availability_sensor
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets.markets import load_registry

XNYS = load_registry().get("XNYS")
UTC = dt.UTC


def tick(sensor, vendor_root, cursor=None):
    context = dg.build_sensor_context(cursor=cursor, resources={"vendor": VendorResource(source=str(vendor_root))})
    return sensor(context), context


def test_each_published_session_is_reported_once_per_revision(tmp_path):
    vendor = tmp_path / "vendor"
    publisher = Publisher(drop_store(str(vendor)), seed=3)
    for session in (dt.date(2026, 3, 9), dt.date(2026, 3, 10)):
        publisher.publish_session("XNYS", session)
    sensor = build_vendor_availability_sensor(XNYS)

    result, _ = tick(sensor, vendor)
    events = {e.partition: e for e in result.asset_events}
    assert set(events) == {"2026-03-09", "2026-03-10"}  # 2026-03-11 was not published: not reported
    first = events["2026-03-10"]
    assert first.asset_key == vendor_manifests_key(XNYS)
    assert first.metadata["revision"].value == 1 and first.metadata["condition"].value == "available"
    assert first.tags["dagster/data_version"] == "r1"

    again, _ = tick(sensor, vendor, result.cursor)
    assert isinstance(again, dg.SkipReason)  # nothing new: no events, no manifest re-read worth reporting

    restated = Scenario("restate", "a restatement", (FaultSpec("restatement", "XNYS", dt.date(2026, 3, 9),
                                                                dt.date(2026, 3, 9), {"symbols": 2}),))
    Publisher(drop_store(str(vendor)), seed=3, scenarios=(restated,)).publish_session(
        "XNYS", dt.date(2026, 3, 9))
    later, _ = tick(sensor, vendor, result.cursor)
    assert [e.partition for e in later.asset_events] == ["2026-03-09"]
    assert later.asset_events[0].metadata["revision"].value == 2
    assert later.asset_events[0].tags["dagster/data_version"] == "r2"


def test_a_batch_session_becomes_a_partition_at_its_regular_close_only():
    partitions = session_partitions(XNYS)
    before_close = dt.datetime(2026, 12, 3, 20, 59, tzinfo=UTC)  # 15:59 in New York
    after_close = dt.datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
    assert partitions.get_partition_keys(current_time=before_close)[-1] == "2026-12-02"
    assert partitions.get_partition_keys(current_time=after_close)[-1] == "2026-12-03"
    summer = dt.datetime(2026, 7, 1, 20, 0, tzinfo=UTC)  # 16:00 EDT: the tick follows DST
    assert partitions.get_partition_keys(current_time=summer)[-1] == "2026-07-01"
    keys = partitions.get_partition_keys(current_time=dt.datetime(2026, 12, 31, 23, tzinfo=UTC))
    assert "2026-11-26" not in keys and "2026-11-28" not in keys and "2026-11-27" in keys
    crypto = session_partitions(load_registry().get("CRYPTO"))  # streaming: today's session is built live
    assert crypto.get_partition_keys(current_time=before_close)[-1] == "2026-12-03"
