"""What an operator does from a shell: pre-flight a delivery, release or discard a quarantined batch."""

import datetime as dt
import json
import re

import pytest

from tradepulse_assets.cli.main import main as cli
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.pipeline import ingest, quarantine
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario

SESSION = dt.date(2026, 3, 9)
NOW = dt.datetime(2026, 3, 9, 21, 0, tzinfo=dt.timezone.utc)


def publish(root, *faults):
    Publisher(drop_store(str(root)), seed=2, scenarios=(Scenario("t", "", tuple(faults)),)).publish_session(
        "XNYS", SESSION
    )


def test_quality_check_passes_a_clean_delivery(tmp_path, capsys):
    publish(tmp_path)
    code = cli(["quality", "check", "--source", str(tmp_path), "--market", "XNYS", "--session", str(SESSION), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["passed"] and payload["blocking_failures"] == []


def test_quality_check_names_the_gate_and_the_evidence_and_exits_non_zero(tmp_path, capsys):
    publish(tmp_path, FaultSpec("ohlc_violation", "XNYS", SESSION, SESSION, {"count": 5}))
    code = cli(["quality", "check", "--source", str(tmp_path), "--market", "XNYS", "--session", str(SESSION)])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"ohlc_consistency\s+FAIL", out) and "ohlc_consistency: first offending rows" in out
    assert out.rstrip().endswith("XNYS 2026-03-09: BLOCKED by ohlc_consistency")


def test_quality_check_on_a_session_not_delivered_is_one_clear_line(tmp_path, capsys):
    code = cli(["quality", "check", "--source", str(tmp_path), "--market", "XNYS", "--session", str(SESSION)])
    err = capsys.readouterr().err
    assert code == 2 and "no manifest" in err and "(fix: " in err and "Traceback" not in err


@pytest.fixture
def quarantined(tmp_path, monkeypatch):
    """A batch quarantined under an incident, in a store and state DB the CLI finds through the environment."""
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", str(tmp_path / "store"))
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", f"sqlite:///{tmp_path / 'state.db'}")
    store, db = LocalObjectStore(tmp_path / "store"), StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    digest = "ab" * 32  # a landed delivery: its bytes and its receipt under its own raw prefix
    prefix = ingest.delivery_prefix("XNYS", SESSION, digest)
    store.put_bytes(f"{prefix}/bars.parquet", b"original bytes")
    store.put_bytes(f"{prefix}/_receipt.json", json.dumps({"delivery": digest, "revision": 1}).encode())
    incidents = IncidentStore(db)
    incident, _ = incidents.open_or_join("checksum_mismatch", "XNYS", now=NOW)
    key = quarantine.record_batch(incidents, incident.id, "XNYS", SESSION, 1, digest, "sha256 mismatch", NOW)
    quarantine.quarantine_batch(store, db, key)
    return key, store, incidents, incident


def test_release_is_recorded_on_the_batch_its_tags_and_the_incident(quarantined, capsys):
    key, store, incidents, incident = quarantined
    assert cli(["ingest", "quarantine", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["batches"]
    assert row["batch"] == key and row["status"] == "quarantined"
    assert cli(["ingest", "quarantine", "release", key, "--reason", "vendor re-sent the file", "--by", "ana"]) == 0
    incident_id, batch_id = quarantine.split_partition_key(key)
    reason = lake.read_quarantine_reason(store, incident_id, batch_id)
    assert reason["status"] == "released" and reason["history"][0]["by"] == "ana"
    assert store.get_tags(lake.quarantine_key(incident_id, batch_id, "bars.parquet"))["status"] == "released"
    assert store.get_bytes(lake.quarantine_key(incident_id, batch_id, "bars.parquet")) == b"original bytes"
    assert any("released by ana" in e.message for e in incidents.events(incident.id))
    (event,) = AuditLog(store.root.parent / "home").read(event="release")
    assert (event["batch"], event["by"], event["revision"]) == (batch_id, "ana", 1)
    assert event["sha256"] == "ab" * 32  # the delivery digest
    # A decision is final: a second one is refused with a clear line.
    assert cli(["ingest", "quarantine", "discard", key, "--reason", "oops"]) == 2
    assert "already released" in capsys.readouterr().err


def test_discard_is_audited_and_a_retried_quarantine_run_keeps_the_decision(quarantined, capsys):
    key, store, incidents, incident = quarantined
    assert cli(["ingest", "quarantine", "discard", key, "--reason", "superseded by r2", "--by", "bo"]) == 0
    incident_id, batch_id = quarantine.split_partition_key(key)
    reason_key = lake.quarantine_reason_key(incident_id, batch_id)
    decided = store.get_bytes(reason_key)
    again = quarantine.quarantine_batch(store, StateDB(f"sqlite:///{store.root.parent / 'state.db'}"), key)
    assert store.get_bytes(reason_key) == decided and again["files"] == 1  # described, not rewritten
    (event,) = AuditLog(store.root.parent / "home").read(event="discard")
    assert (event["batch"], event["by"], event["revision"]) == (batch_id, "bo", 1)
    assert event["reason"] == "superseded by r2"
    assert event["sha256"] == "ab" * 32
