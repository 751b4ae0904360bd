"""Streaming landing pays its durability per poll, not per micro-batch, and compacts a session to one object.

Counts, not clocks: the fsyncs (and syncfs group flushes) are counted, and the landed bytes are compared with
the vendor's byte for byte.
"""

import datetime as dt
import os
import zipfile
from unittest import mock

import pytest

from tradepulse_assets.cli.main import main as cli
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.pipeline.stream import (
    COMPACTED_NAME,
    PACK_PREFIX,
    PACK_MIN,
    LandedStreamConnector,
    compact_promoted_sessions,
    compact_stream_session,
    held_batches,
    poll_stream,
    stream_prefix,
    stream_watermark_name,
)
from tradepulse_assets.core import io as io_module
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.storage.conftest import s3_store

UTC = dt.timezone.utc
XHKG = load_registry().get("XHKG")
SESSION = dt.date(2026, 3, 10)
CLOSE = dt.datetime(2026, 3, 10, 8, 1, tzinfo=UTC)


class SyncCounter:
    def __init__(self):
        self.fsyncs, self.syncfs = 0, 0
        self._fsync, self._syncfs = os.fsync, io_module._syncfs_function()

    def fsync(self, fd):
        self.fsyncs += 1
        return self._fsync(fd)

    def syncfs_function(self):
        if self._syncfs is None:
            return None

        def counted(fd):
            self.syncfs += 1
            return self._syncfs(fd)

        return counted

    def __enter__(self):
        self._patches = [
            mock.patch("os.fsync", self.fsync),
            mock.patch.object(io_module, "_syncfs_function", self.syncfs_function),
        ]
        for p in self._patches:
            p.start()
        return self

    def __exit__(self, *exc):
        for p in self._patches:
            p.stop()


@pytest.fixture
def published(tmp_path):
    Publisher(drop_store(str(tmp_path / "vendor")), seed=3).publish_due("XHKG", SESSION, CLOSE)
    return tmp_path / "vendor"


def _world(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    audit = AuditLog(tmp_path / "home", clock=lambda: CLOSE)
    return store, db, audit


def test_local_put_many_is_atomic_per_object_with_a_bounded_number_of_flushes(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("a/x", b"old", tags={"k": "v"})
    objects = {f"a/{i:04d}": os.urandom(100) for i in range(300)} | {"a/x": b"new", "b/c/y": b""}
    with SyncCounter() as counter:
        store.put_many(objects)
    assert {k: store.get_bytes(k) for k in objects} == objects
    assert store.get_tags("a/x") == {}  # put semantics: no tags given, none kept
    # one group flush (syncfs, or per-file fsyncs where the platform lacks it) plus one fsync per directory
    if counter.syncfs:
        assert counter.syncfs == 1 and counter.fsyncs == 2  # directories a and b/c
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(io_module.TMP_PREFIX)]


def test_a_failed_group_leaves_no_temporary_files_and_no_partial_object(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("a/keep", b"before")
    with mock.patch.object(io_module, "_sync_written", side_effect=OSError("disk gone")):
        with pytest.raises(OSError):
            store.put_many({"a/keep": b"after", "a/new": b"x"})
    assert store.get_bytes("a/keep") == b"before" and not store.exists("a/new")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["keep"]


def test_s3_put_many_writes_every_object(s3_endpoint):
    store = s3_store(s3_endpoint)
    objects = {f"group/{i:03d}": bytes([i]) * (i + 1) for i in range(40)}
    store.put_many(objects)
    assert {k: store.get_bytes(k) for k in store.list_keys("group/")} == objects


def test_audit_append_many_is_one_flush_and_all_or_nothing(tmp_path):
    audit = AuditLog(tmp_path, clock=lambda: CLOSE)
    event = {"event": "stream", "market": "XHKG", "session": "2026-03-10", "batch": "b", "rows": 1,
             "sha256": "0" * 64, "outcome": "ok"}
    with SyncCounter() as counter:
        audit.append_many([{**event, "batch": f"b{i}"} for i in range(50)])
    assert counter.fsyncs == 1
    assert [r["batch"] for r in audit.read()] == [f"b{i}" for i in range(50)]
    with pytest.raises(Exception, match="rows"):
        audit.append_many([{**event, "batch": "ok"}, {**event, "rows": -1}])
    assert len(audit.read()) == 50


def test_a_catch_up_poll_costs_a_constant_number_of_flushes(tmp_path, published):
    store, db, audit = _world(tmp_path)
    with SyncCounter() as counter:
        landed = poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE)
    assert landed == 330
    assert counter.fsyncs + counter.syncfs <= 5  # group flush + directory + audit (+ the DB commits WAL)
    vendor_dir = published / "XHKG" / SESSION.isoformat()
    held = held_batches(store, "XHKG", SESSION)
    assert held == {name: (vendor_dir / name).read_bytes() for name in held}
    assert len(audit.read(event="stream")) == 330


def test_compaction_keeps_every_byte_and_the_session_still_lands(tmp_path, published):
    store, db, audit = _world(tmp_path)
    poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE)
    before = held_batches(store, "XHKG", SESSION)
    assert compact_stream_session(store, "XHKG", SESSION) == 330
    assert store.list_keys(stream_prefix("XHKG", SESSION) + "/") == [f"{stream_prefix('XHKG', SESSION)}/{COMPACTED_NAME}"]
    assert held_batches(store, "XHKG", SESSION) == before
    assert compact_stream_session(store, "XHKG", SESSION) == 0  # idempotent
    with zipfile.ZipFile(store.path(f"{stream_prefix('XHKG', SESSION)}/{COMPACTED_NAME}")) as pack:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in pack.infolist())
    # the poll sees compacted members as held; the vendor copy is damaged, so only our bytes can land it
    assert poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE) == 0
    first = sorted(before)[0]
    (published / "XHKG" / SESSION.isoformat() / first).write_bytes(b"damaged at the vendor after we landed it")
    outcome = ingest.land_session(
        LandedStreamConnector(store, DirectoryConnector(published)), store, audit, XHKG, SESSION, CLOSE
    )
    assert outcome.ok and outcome.rows == XHKG.universe_size * 330


def test_a_loose_micro_batch_wins_over_a_compacted_member_of_the_same_name(tmp_path, published):
    store, db, audit = _world(tmp_path)
    poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE)
    compact_stream_session(store, "XHKG", SESSION)
    name = sorted(held_batches(store, "XHKG", SESSION))[0]
    store.put_bytes(f"{stream_prefix('XHKG', SESSION)}/{name}", b"re-landed")  # e.g. a crash before the delete
    assert held_batches(store, "XHKG", SESSION)[name] == b"re-landed"
    compact_stream_session(store, "XHKG", SESSION)
    assert held_batches(store, "XHKG", SESSION)[name] == b"re-landed"


def test_the_ingestor_compacts_a_session_once_production_holds_it_and_never_under_a_running_landing(
    tmp_path, published
):
    store, db, audit = _world(tmp_path)
    poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE)
    before = held_batches(store, "XHKG", SESSION)
    assert compact_promoted_sessions(store, db, "XHKG", holder="ingestor") == {}  # not promoted yet: loose
    [pack] = store.list_keys(stream_prefix("XHKG", SESSION) + "/")  # the catch-up poll's one pack
    assert pack.rsplit("/", 1)[-1].startswith(PACK_PREFIX)

    ledger = SessionLedger(db)
    ledger.acquire("XHKG", SESSION, "landing-run")
    ledger.record_promotion("XHKG", SESSION, revision=1, digest="d1", holder="landing-run")
    assert compact_promoted_sessions(store, db, "XHKG", holder="ingestor") == {}  # the run still owns it
    ledger.release("XHKG", SESSION, "landing-run")

    assert compact_promoted_sessions(store, db, "XHKG", holder="ingestor") == {SESSION: 330}
    assert store.list_keys(stream_prefix("XHKG", SESSION) + "/") == [
        f"{stream_prefix('XHKG', SESSION)}/{COMPACTED_NAME}"
    ]
    assert held_batches(store, "XHKG", SESSION) == before
    assert ledger.active_holder("XHKG", SESSION) is None  # the ingestor gave the lease back
    assert compact_promoted_sessions(store, db, "XHKG", holder="ingestor") == {}


def test_the_stream_command_lands_then_compacts_what_production_holds(tmp_path, published, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", str(tmp_path / "store"))
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("TRADEPULSE_VENDOR_SOURCE", str(published))
    monkeypatch.setenv("TRADEPULSE_CLOCK", f"simulated:{CLOSE.isoformat()}:1")
    assert cli(["ingest", "stream", "--market", "XHKG", "--once"]) == 0
    assert "XHKG: landed 330 micro-batch(es)" in capsys.readouterr().out
    store, db, _ = _world(tmp_path)
    ledger = SessionLedger(db)
    ledger.acquire("XHKG", SESSION, "landing-run")
    ledger.record_promotion("XHKG", SESSION, revision=1, digest="d1", holder="landing-run")
    ledger.release("XHKG", SESSION, "landing-run")

    assert cli(["ingest", "stream", "--market", "XHKG", "--once"]) == 0
    assert f"XHKG {SESSION}: 330 micro-batch(es) compacted into one object" in capsys.readouterr().out
    assert store.list_keys(stream_prefix("XHKG", SESSION) + "/") == [
        f"{stream_prefix('XHKG', SESSION)}/{COMPACTED_NAME}"
    ]


def test_a_catch_up_poll_writes_one_pack_of_the_vendor_bytes_and_pollers_write_the_same_one(
    tmp_path, published
):
    vendor_dir = published / "XHKG" / SESSION.isoformat()
    packs = []
    for poller in ("a", "b"):  # two pollers that found the same micro-batches
        (tmp_path / poller).mkdir()
        store, db, audit = _world(tmp_path / poller)
        assert poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE) == 330
        [key] = store.list_keys(stream_prefix("XHKG", SESSION) + "/")
        packs.append((key, store.get_bytes(key)))
        held = held_batches(store, "XHKG", SESSION)
        assert len(held) == 330 and held == {name: (vendor_dir / name).read_bytes() for name in held}
    assert packs[0] == packs[1]  # same key, same bytes: writing it twice changes nothing


def test_a_poll_that_finds_a_few_micro_batches_writes_them_loose(tmp_path):
    store, db, audit = _world(tmp_path)
    vendor = Publisher(drop_store(str(tmp_path / "vendor")), seed=3)
    early = dt.datetime(2026, 3, 10, 1, 30 + PACK_MIN - 1, 30, tzinfo=UTC)  # PACK_MIN - 1 minutes published
    vendor.publish_due("XHKG", SESSION, early)
    assert poll_stream(XHKG, DirectoryConnector(tmp_path / "vendor"), store, db, audit, early) == PACK_MIN - 1
    names = [k.rsplit("/", 1)[-1] for k in store.list_keys(stream_prefix("XHKG", SESSION) + "/")]
    assert len(names) == PACK_MIN - 1 and not any(n.startswith("_") for n in names)
    vendor.publish_due("XHKG", SESSION, CLOSE)
    landed = poll_stream(XHKG, DirectoryConnector(tmp_path / "vendor"), store, db, audit, CLOSE)
    assert landed == 330 - (PACK_MIN - 1)
    assert len(held_batches(store, "XHKG", SESSION)) == 330
    assert compact_stream_session(store, "XHKG", SESSION) == 330  # loose ones and the pack's members


def test_a_poll_that_crashes_writing_its_pack_leaves_nothing_and_the_next_poll_lands_everything(
    tmp_path, published
):
    store, db, audit = _world(tmp_path)
    with mock.patch.object(io_module, "_sync_written", side_effect=OSError("disk gone")):
        with pytest.raises(OSError):
            poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE)
    assert store.list_keys("landing/") == [] and audit.read() == []
    assert db.get_watermark(stream_watermark_name("XHKG")) is None
    assert not [p for p in (tmp_path / "store").rglob("*") if p.name.startswith(io_module.TMP_PREFIX)]
    assert poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE) == 330
    assert db.get_watermark(stream_watermark_name("XHKG")) == "2026-03-10T07:59:00+00:00"
    assert len(audit.read(event="stream")) == 330


def test_on_s3_a_catch_up_lands_as_one_pack_and_the_session_is_built_from_it(
    tmp_path, published, s3_endpoint
):
    store = s3_store(s3_endpoint)
    _, db, audit = _world(tmp_path)
    assert poll_stream(XHKG, DirectoryConnector(published), store, db, audit, CLOSE) == 330
    [pack] = store.list_keys(stream_prefix("XHKG", SESSION) + "/")
    assert pack.rsplit("/", 1)[-1].startswith(PACK_PREFIX)
    vendor_dir = published / "XHKG" / SESSION.isoformat()
    held = held_batches(store, "XHKG", SESSION)
    assert held == {name: (vendor_dir / name).read_bytes() for name in held} and len(held) == 330
    outcome = ingest.land_session(
        LandedStreamConnector(store, DirectoryConnector(published)), store, audit, XHKG, SESSION, CLOSE
    )
    assert outcome.ok and outcome.rows == XHKG.universe_size * 330
