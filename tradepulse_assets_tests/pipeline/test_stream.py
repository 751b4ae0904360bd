"""The streaming ingestor lands micro-batches, keeps its watermark and never mistakes a closed session."""

import datetime as dt

from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline.stream import poll_stream, stream_watermark_name, streaming_session
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store

UTC = dt.timezone.utc
XHKG = load_registry().get("XHKG")


def test_the_streamed_session_after_the_close_is_todays_not_the_previous_one():
    assert streaming_session(XHKG, dt.datetime(2026, 11, 30, 2, 0, tzinfo=UTC)) == dt.date(2026, 11, 30)
    assert streaming_session(XHKG, dt.datetime(2026, 11, 30, 17, 0, tzinfo=UTC)) == dt.date(2026, 11, 30)
    assert streaming_session(XHKG, dt.datetime(2026, 11, 30, 0, 30, tzinfo=UTC)) == dt.date(2026, 11, 27)


def test_poll_lands_new_micro_batches_once_and_advances_the_watermark(tmp_path):
    now = dt.datetime(2026, 3, 10, 2, 0, 30, tzinfo=UTC)  # 30 minutes into the XHKG session
    Publisher(drop_store(str(tmp_path / "vendor")), seed=1).publish_due("XHKG", dt.date(2026, 3, 10), now)
    store, db = LocalObjectStore(tmp_path / "store"), StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    audit = AuditLog(tmp_path / "home", clock=lambda: now)
    connector = DirectoryConnector(tmp_path / "vendor")
    assert poll_stream(XHKG, connector, store, db, audit, now) == 30  # 01:30 .. 01:59
    assert db.get_watermark(stream_watermark_name("XHKG")) == "2026-03-10T01:59:00+00:00"
    assert poll_stream(XHKG, connector, store, db, audit, now) == 0  # idempotent
    assert len(audit.read()) == 30


def test_session_is_built_from_landed_micro_batches_and_missing_ones_come_from_the_vendor(tmp_path):
    from tradepulse_assets.pipeline import ingest
    from tradepulse_assets.pipeline.stream import LandedStreamConnector, held_batches

    session = dt.date(2026, 3, 10)
    vendor = DirectoryConnector(tmp_path / "vendor")
    publisher = Publisher(drop_store(str(tmp_path / "vendor")), seed=1)
    store, db = LocalObjectStore(tmp_path / "store"), StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    audit = AuditLog(tmp_path / "home", clock=lambda: dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    publisher.publish_due("XHKG", session, dt.datetime(2026, 3, 10, 2, 0, 30, tzinfo=UTC))
    poll_stream(XHKG, vendor, store, db, audit, dt.datetime(2026, 3, 10, 2, 0, 30, tzinfo=UTC))
    close = dt.datetime(2026, 3, 10, 8, 1, tzinfo=UTC)
    publisher.publish_due("XHKG", session, close)  # the rest of the session; the ingestor was down
    landed_copy = sorted(held_batches(store, "XHKG", session))[0]  # a member of the first poll's pack
    vendor_file = tmp_path / "vendor" / "XHKG" / "2026-03-10" / landed_copy
    assert vendor_file.is_file()
    vendor_file.write_bytes(b"vendor copy damaged after we landed it")  # our landed copy must be used
    outcome = ingest.land_session(LandedStreamConnector(store, vendor), store, audit, XHKG, session, close)
    assert outcome.ok and outcome.rows == XHKG.universe_size * 330


def test_a_corrupt_micro_batch_among_good_ones_is_named_and_quarantined_with_its_original_bytes(tmp_path):
    """Micro-batches are parsed together; one damaged file still fails alone, by name, bytes kept verbatim."""
    from tradepulse_assets.incidents.store import IncidentStore
    from tradepulse_assets.pipeline import ingest, quarantine
    from tradepulse_assets.pipeline.stream import LandedStreamConnector, held_batches

    session, close = dt.date(2026, 3, 10), dt.datetime(2026, 3, 10, 8, 1, tzinfo=UTC)
    Publisher(drop_store(str(tmp_path / "vendor")), seed=1).publish_due("XHKG", session, close)
    damaged = tmp_path / "vendor" / "XHKG" / "2026-03-10" / "bars-0230.parquet"
    original = bytearray(damaged.read_bytes())
    original[4:64] = bytes(60)  # same size, data pages zeroed, footer intact
    damaged.write_bytes(bytes(original))
    store, db = LocalObjectStore(tmp_path / "store"), StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    audit = AuditLog(tmp_path / "home", clock=lambda: close)
    vendor = DirectoryConnector(tmp_path / "vendor")

    assert poll_stream(XHKG, vendor, store, db, audit, close) == 330
    outcomes = {e["batch"]: e["outcome"] for e in audit.read(event="stream")}
    assert outcomes.pop("bars-0230.parquet").startswith("fault:sha256")
    assert set(outcomes.values()) == {"ok"}
    assert held_batches(store, "XHKG", session)["bars-0230.parquet"] == bytes(original)

    outcome = ingest.land_session(LandedStreamConnector(store, vendor), store, audit, XHKG, session, close)
    assert not outcome.ok and outcome.bars is None
    assert {f.file for f in outcome.faults} == {"bars-0230.parquet"}
    assert "sha256" in {f.check for f in outcome.faults}
    assert all(f.rows == XHKG.universe_size for f in outcome.files if f.name != "bars-0230.parquet")
    raw = ingest.delivery_prefix("XHKG", session, outcome.digest)  # the delivery kept as one pack of 330
    kept_as = ("_files.zip", "_receipt.json", "manifest.json")
    assert store.list_keys(raw + "/") == [f"{raw}/{name}" for name in kept_as]
    assert ingest.raw_files(store, raw)["bars-0230.parquet"] == bytes(original)

    incidents = IncidentStore(db)
    incident, _ = incidents.open_or_join("checksum_mismatch", "XHKG", now=close)
    key = quarantine.record_batch(incidents, incident.id, "XHKG", session, outcome.manifest.revision,
                                  outcome.digest, "sha256 mismatch", close)
    batch = quarantine.quarantine_batch(store, db, key)
    [kept] = [k for k in batch["keys"] if k.endswith("/bars-0230.parquet")]
    assert batch["files"] == 331 and store.get_bytes(kept) == bytes(original)  # the manifest and every file


def test_the_watermark_rebuilt_from_held_micro_batches_skips_one_that_does_not_parse(tmp_path):
    """``ingest reseed`` rebuilds the watermark from what is held: a corrupt micro-batch kept as evidence
    landed no bar, as for the poll, and does not stop the rebuild."""
    from tradepulse_assets.pipeline.stream import landed_watermark

    session, now = dt.date(2026, 3, 10), dt.datetime(2026, 3, 10, 2, 0, 30, tzinfo=UTC)
    Publisher(drop_store(str(tmp_path / "vendor")), seed=1).publish_due("XHKG", session, now)
    (tmp_path / "vendor" / "XHKG" / "2026-03-10" / "bars-0159.parquet").write_bytes(b"PAR1 truncated")
    store, db = LocalObjectStore(tmp_path / "store"), StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    audit = AuditLog(tmp_path / "home", clock=lambda: now)
    assert poll_stream(XHKG, DirectoryConnector(tmp_path / "vendor"), store, db, audit, now) == 30
    assert db.get_watermark(stream_watermark_name("XHKG")) == "2026-03-10T01:58:00+00:00"
    assert landed_watermark(store, "XHKG") == "2026-03-10T01:58:00+00:00"
