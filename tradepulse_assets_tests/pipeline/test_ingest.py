"""One session through landing, the gates and promotion, on real simulator output."""

import datetime as dt

import polars as pl
import pytest

from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario

UTC = dt.timezone.utc
REGISTRY = load_registry()
SESSION = dt.date(2026, 3, 9)  # first XNYS session of US summer time
NOW = dt.datetime(2026, 3, 9, 20, 2, tzinfo=UTC)  # before the 20:05 deadline


@pytest.fixture
def env(tmp_path):
    vendor = tmp_path / "vendor"
    store = LocalObjectStore(tmp_path / "store")
    return vendor, store, AuditLog(tmp_path / "home", clock=lambda: NOW), DirectoryConnector(vendor)


def publish(vendor, *faults):
    scenario = Scenario("test", "test", tuple(faults))
    Publisher(drop_store(str(vendor)), seed=7, scenarios=(scenario,)).publish_session(
        "XNYS", SESSION
    )


def test_clean_session_lands_passes_every_gate_and_promotes(env):
    vendor, store, audit, connector = env
    publish(vendor)
    market = REGISTRY.get("XNYS")
    landed = ingest.land_session(connector, store, audit, market, SESSION, NOW)
    assert landed.ok and landed.rows == landed.vendor_total == 24 * 390
    staged = ingest.stage_session(store, market, SESSION)
    assert [r.gate for r in staged.results if not r.passed] == []
    assert ingest.promote_session(store, market, SESSION) == 24 * 390
    production = lake.read_frame(store, "production", "XNYS", SESSION)
    assert production.get_column("ts").min() == dt.datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert ingest.reconciliation(landed)["verdict"] == "reconciled"
    events = audit.read()  # the manifest, then the file: both held as delivered, with revision and digest
    assert [(e["batch"], e["outcome"]) for e in events] == [("r1/manifest.json", "ok"),
                                                            ("r1/bars.parquet", "ok")]
    assert events[1]["rows"] == 24 * 390 and events[1]["sha256"] == events[1]["declared_sha256"]
    assert {(e["revision"], e["delivery"]) for e in events} == {(1, landed.digest)}


def test_corrupted_file_is_caught_at_landing_and_its_bytes_are_kept(env):
    vendor, store, audit, connector = env
    publish(vendor, FaultSpec("checksum_corruption", "XNYS", SESSION, SESSION, {"bytes": 8}))
    landed = ingest.land_session(connector, store, audit, REGISTRY.get("XNYS"), SESSION, NOW)
    assert not landed.ok
    assert {f.check for f in landed.faults} >= {"sha256"}
    gate = ingest.landing_gate(landed)
    assert not gate.passed and gate.blocking and "sha256" in str(gate.evidence)
    # The original (corrupted) bytes are held bit for bit for quarantine; nothing reached the landing layer.
    original = (vendor / "XNYS" / str(SESSION) / landed.files[0].name).read_bytes()
    assert store.get_bytes(landed.files[0].raw_key) == original
    assert not store.exists(lake.partition_key("landing", "XNYS", SESSION))
    manifest_line, file_line = audit.read()
    assert manifest_line["outcome"] == "ok" and file_line["outcome"].startswith("quarantine:sha256")
    assert file_line["sha256"] == ingest.sha256_hex(original) != file_line["declared_sha256"]


def test_dst_trap_fails_calendar_alignment_and_blocks_promotion(env):
    vendor, store, audit, connector = env
    publish(vendor, FaultSpec("local_timestamps", "XNYS", SESSION, SESSION, {}))
    market = REGISTRY.get("XNYS")
    assert ingest.land_session(connector, store, audit, market, SESSION, NOW).ok
    staged = ingest.stage_session(store, market, SESSION)
    failed = {r.gate for r in staged.blocking_failures}
    assert "calendar_alignment" in failed and not staged.promotable


def test_not_published_is_lag_not_corruption(env):
    vendor, store, audit, connector = env
    with pytest.raises(ingest.NotPublished, match="no manifest"):
        ingest.land_session(connector, store, audit, REGISTRY.get("XNYS"), SESSION, NOW)


def test_relanding_is_idempotent(env):
    vendor, store, audit, connector = env
    publish(vendor)
    market = REGISTRY.get("XNYS")
    first = ingest.land_session(connector, store, audit, market, SESSION, NOW)
    before = {k: store.get_bytes(k) for k in store.list_keys("lake/landing")}
    second = ingest.land_session(connector, store, audit, market, SESSION, NOW)
    after = {k: store.get_bytes(k) for k in store.list_keys("lake/landing")}
    assert first.rows == second.rows and list(before) == list(after)
    assert pl.read_parquet(after[list(after)[0]]).equals(first.bars)
