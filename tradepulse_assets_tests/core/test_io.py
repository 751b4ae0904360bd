"""The IO primitives: atomic replace, locked JSONL append with torn-line repair, the S3 client factory."""

import json
import os
from pathlib import Path

import pytest

from tradepulse_assets.core.io import (
    TMP_PREFIX,
    S3Settings,
    append_jsonl,
    atomic_write,
    jsonl_line,
    read_locked,
    s3_client,
)
from tradepulse_assets_tests.support.writers import run_writer_processes, whole_json_lines

# ------------------------------------------------------------------------------------------ atomic write


def test_atomic_write_replaces_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    assert atomic_write(target, b"first", fsync=True) == target
    atomic_write(target, b"second", fsync=False)
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["file.bin"]  # no temporary file left


def test_a_failed_rename_keeps_the_old_bytes_and_removes_the_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write(target, b"old", fsync=True)

    def refuse(*_args):
        raise OSError("simulated failure at rename")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="simulated failure"):
        atomic_write(target, b"new", fsync=True)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]


@pytest.mark.parametrize("fsync, expected", [(True, 2), (False, 0)])
def test_the_fsync_policy_is_the_callers(tmp_path, monkeypatch, fsync, expected):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    atomic_write(tmp_path / "f", b"x", fsync=fsync)
    assert len(calls) == expected  # the file, then its directory (the rename)


def test_temporary_files_carry_the_reserved_prefix(tmp_path, monkeypatch):
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(Path(src).name), real(src, dst)))
    atomic_write(tmp_path / "data.parquet", b"x", fsync=False)
    assert seen and seen[0].startswith(TMP_PREFIX + "data.parquet.")


# ------------------------------------------------------------------------------------------ JSONL append


def test_append_writes_compact_sorted_lines(tmp_path):
    path = tmp_path / "log" / "events.jsonl"
    append_jsonl(path, {"b": 1, "a": "é"}, fsync=True)
    append_jsonl(path, {"c": [1, 2]}, fsync=False)
    assert path.read_text(encoding="utf-8") == '{"a":"é","b":1}\n{"c":[1,2]}\n'
    assert read_locked(path) == path.read_text(encoding="utf-8")
    assert (tmp_path / "log" / "events.jsonl.lock").exists()


def test_a_torn_line_is_closed_before_the_next_record(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event": "landed", "mar')  # a writer died mid-line
    append_jsonl(path, {"event": "next"}, fsync=True)
    first, second, end = path.read_bytes().split(b"\n")
    assert first == b'{"event": "landed", "mar' and json.loads(second) == {"event": "next"} and end == b""


def test_an_unserialisable_record_writes_nothing(tmp_path):
    path = tmp_path / "events.jsonl"
    append_jsonl(path, {"ok": 1}, fsync=False)
    with pytest.raises(TypeError):
        append_jsonl(path, {"bad": object()}, fsync=False)
    assert path.read_bytes() == jsonl_line({"ok": 1})


def test_reading_an_absent_file_gives_empty_text(tmp_path):
    assert read_locked(tmp_path / "none.jsonl") == ""


WRITERS = 4
APPENDS = 120
PADDING = "y" * 7000  # larger than PIPE_BUF: without the lock, writers could interleave


def _writer(path: str, writer: int) -> None:
    for seq in range(APPENDS):
        append_jsonl(path, {"writer": writer, "seq": seq, "padding": PADDING}, fsync=False)


def test_concurrent_processes_append_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    run_writer_processes(_writer, str(path), WRITERS)
    records = whole_json_lines(path.read_bytes(), WRITERS * APPENDS)
    assert all(r["padding"] == PADDING for r in records)
    assert sorted((r["writer"], r["seq"]) for r in records) == [
        (w, s) for w in range(WRITERS) for s in range(APPENDS)
    ]


# ------------------------------------------------------------------------------------------ S3 clients


def test_settings_pass_only_what_is_set():
    assert S3Settings().resource_fields() == {"max_attempts": 5}
    assert S3Settings(endpoint_url="http://h:1", region_name="eu-west-1").resource_fields() == {
        "endpoint_url": "http://h:1",
        "region_name": "eu-west-1",
        "max_attempts": 5,
    }


def test_the_factory_builds_a_working_client_from_resource_settings(s3_endpoint):
    client = s3_client(
        S3Settings(
            endpoint_url=s3_endpoint.endpoint_url,
            region_name=s3_endpoint.region,
            aws_access_key_id=s3_endpoint.access_key_id,
            aws_secret_access_key=s3_endpoint.secret_access_key,
            max_attempts=2,
        )
    )
    assert client.meta.endpoint_url == s3_endpoint.endpoint_url
    assert client.meta.region_name == s3_endpoint.region
    # botocore counts the first try: max_attempts=2 retries means three attempts in all
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    bucket = s3_endpoint.create_bucket()
    client.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3_endpoint.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
