"""The audit trail: whole, sorted JSON lines from many processes; bad events refused; torn lines reported."""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tradepulse_assets.storage.audit import AuditLog, AuditLogCorrupt, InvalidAuditEvent
from tradepulse_assets.storage.object_store import LocalObjectStore, StorageError
from tradepulse_assets_tests.support.writers import run_writer_processes, whole_json_lines

T0 = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
SHA = hashlib.sha256(b"batch bytes").hexdigest()


def event(**overrides):
    base = {
        "event": "ingest.landed",
        "market": "XNYS",
        "session": "2026-03-09",
        "batch": "b1",
        "rows": 390,
        "sha256": SHA,
        "outcome": "ok",
    }
    return {**base, **overrides}


def test_append_writes_one_sorted_line_with_utc_time(tmp_path):
    log = AuditLog(tmp_path, clock=lambda: T0)
    record = log.append(event(session=date(2026, 3, 9), detail="restart confirmed"))
    assert log.path == tmp_path / "observability/audit/ingestion_events.jsonl"
    (line,) = log.path.read_text().splitlines()
    assert list(json.loads(line)) == sorted(json.loads(line))
    assert json.loads(line) == record
    assert record["time"] == "2026-03-09T14:00:00Z" and record["session"] == "2026-03-09"

    # an explicit time in another zone is normalised to UTC
    later = log.append(event(time=datetime(2026, 3, 9, 10, 30, tzinfo=timezone(timedelta(hours=-4)))))
    assert later["time"] == "2026-03-09T14:30:00Z"


def test_read_filters_by_fields_and_time(tmp_path):
    clock = iter(T0 + timedelta(minutes=i) for i in range(10))
    log = AuditLog(LocalObjectStore(tmp_path), clock=lambda: next(clock))
    log.append(event(market="XNYS", outcome="ok"))
    log.append(event(market="XLON", outcome="quarantined"))
    log.append(event(market="XNYS", outcome="quarantined", session="2026-03-10"))
    assert [e["market"] for e in log.read()] == ["XNYS", "XLON", "XNYS"]
    assert [e["market"] for e in log.read(outcome="quarantined")] == ["XLON", "XNYS"]
    assert len(log.read(market="XNYS", session=date(2026, 3, 10))) == 1
    assert [
        e["market"] for e in log.read(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2))
    ] == ["XLON"]
    assert AuditLog(tmp_path / "empty").read() == []


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"market": None}, "market"),
        ({"rows": True}, "rows"),
        ({"rows": -1}, "rows"),
        ({"rows": "390"}, "rows"),
        ({"sha256": "sha256:" + SHA}, "sha256"),
        ({"session": "09/03/2026"}, "session"),
        ({"outcome": ""}, "outcome"),
        ({"time": datetime(2026, 3, 9, 14, 0)}, "naive"),
        ({"extra": {1, 2}}, "JSON"),
    ],
)
def test_invalid_events_are_refused_and_not_written(tmp_path, bad, message):
    log = AuditLog(tmp_path)
    with pytest.raises(InvalidAuditEvent, match=message):
        log.append(event(**bad))
    assert log.read() == []


def test_missing_required_fields_are_named(tmp_path):
    incomplete = event()
    del incomplete["sha256"], incomplete["batch"]
    with pytest.raises(InvalidAuditEvent, match=r"\['batch', 'sha256'\]"):
        AuditLog(tmp_path).append(incomplete)


def test_a_torn_line_is_reported_and_the_next_append_starts_a_new_line(tmp_path):
    log = AuditLog(tmp_path, clock=lambda: T0)
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b'{"event": "ingest.landed", "mar')  # a writer died mid-line
    log.append(event())
    with pytest.raises(AuditLogCorrupt) as caught:
        log.read()
    assert caught.value.line_number == 1 and str(log.path) in str(caught.value)
    assert [e["batch"] for e in log.read(skip_corrupt=True)] == ["b1"]


def test_an_s3_store_is_refused_with_the_reason(s3_endpoint):
    from tradepulse_assets_tests.storage.conftest import s3_store

    with pytest.raises(StorageError, match="S3 has no append"):
        AuditLog(s3_store(s3_endpoint))


def test_home_default(monkeypatch, tmp_path):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    assert AuditLog().path == tmp_path / "home/observability/audit/ingestion_events.jsonl"


# ------------------------------------------------------------------------------------------ concurrency

WRITERS = 4
APPENDS = 150
PADDING = "x" * 6000  # each line is larger than PIPE_BUF (4096): unlocked writers would be free to interleave


def _writer(root: str, writer: int) -> None:
    log = AuditLog(Path(root))
    for seq in range(APPENDS):
        log.append(event(batch=f"w{writer}-{seq}", writer=writer, seq=seq, padding=PADDING))


def test_concurrent_processes_append_whole_lines(tmp_path):
    run_writer_processes(_writer, str(tmp_path), WRITERS)
    records = whole_json_lines(AuditLog(tmp_path).path.read_bytes(), WRITERS * APPENDS)
    assert all(r["padding"] == PADDING for r in records)
    assert sorted((r["writer"], r["seq"]) for r in records) == [
        (w, s) for w in range(WRITERS) for s in range(APPENDS)
    ]
    for writer in range(WRITERS):  # each writer's own appends stay in order
        seqs = [r["seq"] for r in records if r["writer"] == writer]
        assert seqs == sorted(seqs)
