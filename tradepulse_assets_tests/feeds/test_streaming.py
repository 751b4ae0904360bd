"""Streaming publication: minute micro-batches appear as the clock advances, the manifest is rewritten."""

import datetime as dt

import polars as pl

from tradepulse_assets.core.clock import ManualClock
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import STREAM_LATENCY, Publisher, drop_store
from tradepulse_assets.feeds.scenarios import scenario_from_dict
from tradepulse_assets.feeds.simulator import simulate_session

from .conftest import read_session

SESSION = dt.date(2026, 3, 10)
OPEN = dt.datetime(2026, 3, 10, 1, 30, tzinfo=dt.timezone.utc)  # XHKG, 01:30-04:00 and 05:00-08:00 UTC


def _publisher(root, faults=()):
    scenarios = [scenario_from_dict({"name": "s", "faults": list(faults)}, "test")] if faults else []
    return Publisher(drop_store(root), seed=7, n_symbols=4, scenarios=scenarios)


def test_minute_batches_follow_the_clock_and_complete_the_session(tmp_path, registry):
    publisher, clock, conn = _publisher(tmp_path), ManualClock(OPEN), DirectoryConnector(tmp_path)
    assert publisher.publish_due("XHKG", SESSION, clock.now()).status == "pending"
    assert conn.read_manifest("XHKG", SESSION) is None  # nothing published before the first minute ends
    clock.advance(dt.timedelta(minutes=3) + STREAM_LATENCY)
    publisher.publish_due("XHKG", SESSION, clock.now())
    manifest = conn.read_manifest("XHKG", SESSION)
    assert [f.name for f in manifest.files] == ["bars-0130.parquet", "bars-0131.parquet", "bars-0132.parquet"]
    assert manifest.condition == "pending" and manifest.revision == 1 and manifest.record_count == 12
    assert publisher.publish_due("XHKG", SESSION, clock.now()).status == "unchanged"  # idempotent tick
    clock.set(dt.datetime(2026, 3, 10, 8, 1, tzinfo=dt.timezone.utc))
    publisher.publish_due("XHKG", SESSION, clock.now())
    manifest = conn.read_manifest("XHKG", SESSION)
    assert manifest.condition == "available" and len(manifest.files) == 330 and manifest.revision == 1
    assert read_session(tmp_path, "XHKG", SESSION).equals(
        simulate_session(registry.get("XHKG"), SESSION, 7, 4)
    )


def test_stall_stops_the_stream_and_the_session_stays_pending(tmp_path):
    publisher = _publisher(
        tmp_path, [{"kind": "stall", "market": "XHKG", "session": str(SESSION), "at": "02:00"}]
    )
    publisher.publish_due("XHKG", SESSION, dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc))
    manifest = DirectoryConnector(tmp_path).read_manifest("XHKG", SESSION)
    assert manifest.condition == "pending"
    assert [f.name for f in manifest.files][-1] == "bars-0159.parquet" and len(manifest.files) == 30


def test_delay_holds_each_batch_back(tmp_path):
    publisher = _publisher(
        tmp_path, [{"kind": "delay", "market": "XHKG", "session": str(SESSION), "minutes": 20}]
    )
    now = OPEN + dt.timedelta(minutes=10)
    assert publisher.publish_due("XHKG", SESSION, now).status == "pending"
    publisher.publish_due("XHKG", SESSION, now + dt.timedelta(minutes=20))
    assert len(DirectoryConnector(tmp_path).read_manifest("XHKG", SESSION).files) == 9


def test_out_of_order_in_a_stream_delivers_bars_in_a_later_batch(tmp_path):
    fault = {"kind": "out_of_order", "market": "XHKG", "session": str(SESSION), "count": 3, "lag": 2}
    publisher = _publisher(tmp_path, [fault])
    publisher.publish_due("XHKG", SESSION, dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.timezone.utc))
    conn = DirectoryConnector(tmp_path)
    manifest = conn.read_manifest("XHKG", SESSION)
    late = 0
    for entry in manifest.files:
        frame = pl.read_parquet(conn.read_file("XHKG", SESSION, entry.name))
        late += frame.filter(pl.col("ts").dt.strftime("%H%M") != entry.name[5:9]).height
    assert late == 3


def test_a_restarted_stream_keeps_the_ground_truth_of_file_damage_already_published(tmp_path):
    import json

    fault = {
        "kind": "checksum_corruption",
        "market": "XHKG",
        "session": str(SESSION),
        "file": "bars-0131.parquet",
    }
    _publisher(tmp_path, [fault]).publish_due("XHKG", SESSION, OPEN + dt.timedelta(minutes=3))
    _publisher(tmp_path, [fault]).publish_due("XHKG", SESSION, OPEN + dt.timedelta(minutes=10))  # new process
    truth = json.loads((tmp_path / "_ground_truth" / "XHKG" / f"{SESSION}.json").read_text())
    assert [(d["kind"], d["files"]) for d in truth["damages"]] == [
        ("checksum_corruption", ["bars-0131.parquet"])
    ]
