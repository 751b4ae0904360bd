"""The object store behaves the same on a local directory and on S3; local writes survive a crashed writer."""

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from tradepulse_assets.storage.object_store import (
    TAGS_SUFFIX,
    TMP_PREFIX,
    InvalidKey,
    InvalidTags,
    LocalObjectStore,
    ObjectNotFound,
    Put,
    S3ObjectStore,
    StorageError,
    object_store_from_url,
)
from tradepulse_assets_tests.storage.conftest import endpoint_settings, s3_store


def test_round_trip_overwrite_and_listing(store):
    store.put_bytes("landing/XNYS/a.csv", b"v1")
    store.put_bytes("landing/XNYS/a.csv", b"version two")
    store.put_bytes("landing/XNYSX/b.csv", b"b")
    store.put_bytes("lake/x.parquet", b"\x00\x01binary")

    assert store.get_bytes("landing/XNYS/a.csv") == b"version two"
    assert store.get_bytes("lake/x.parquet") == b"\x00\x01binary"
    assert store.exists("landing/XNYS/a.csv") and not store.exists("landing/XNYS/missing.csv")

    # string prefixes, as on S3: "landing/XNYS" also matches "landing/XNYSX/..."
    assert store.list_keys("landing/XNYS/") == ["landing/XNYS/a.csv"]
    assert store.list_keys("landing/XNYS") == ["landing/XNYS/a.csv", "landing/XNYSX/b.csv"]
    assert store.list_keys() == ["lake/x.parquet", "landing/XNYS/a.csv", "landing/XNYSX/b.csv"]
    assert store.list_keys("nowhere/") == []

    (info,) = store.list("landing/XNYS/")
    assert info.key == "landing/XNYS/a.csv"
    assert info.size == len(b"version two")
    # the same content has the same etag on both stores: S3's single-put ETag is the MD5 of the bytes
    assert info.etag == hashlib.md5(b"version two").hexdigest()
    assert info.modified.tzinfo is not None


def test_tags_follow_s3_semantics(store, s3_endpoint):
    tags = {"incident_id": "INC-42", "batch_id": "b.2026-03-09_01", "reason": "checksum mismatch"}
    store.put_bytes("quarantine/INC-42/b1/file.csv", b"raw", tags=tags)
    assert store.get_tags("quarantine/INC-42/b1/file.csv") == tags

    store.put_tags("quarantine/INC-42/b1/file.csv", {"incident_id": "INC-43"})
    assert store.get_tags("quarantine/INC-42/b1/file.csv") == {"incident_id": "INC-43"}

    store.copy("quarantine/INC-42/b1/file.csv", "archive/file.csv")
    assert store.get_bytes("archive/file.csv") == b"raw"
    assert store.get_tags("archive/file.csv") == {"incident_id": "INC-43"}

    store.put_bytes("archive/file.csv", b"rewritten")  # a put without tags clears them, as on S3
    assert store.get_tags("archive/file.csv") == {}

    # sidecars never show up as objects
    assert store.list_keys() == ["archive/file.csv", "quarantine/INC-42/b1/file.csv"]

    if isinstance(store, S3ObjectStore):  # real S3 object tags, seen by a plain boto3 client
        raw = s3_endpoint.client().get_object_tagging(
            Bucket=store.bucket, Key="quarantine/INC-42/b1/file.csv"
        )
        assert raw["TagSet"] == [{"Key": "incident_id", "Value": "INC-43"}]
    else:
        sidecar = store.path("quarantine/INC-42/b1/file.csv").with_name("file.csv" + TAGS_SUFFIX)
        assert sidecar.is_file()

    assert store.delete("quarantine/INC-42/b1/file.csv") is True
    assert store.list_keys() == ["archive/file.csv"]


def test_missing_key_errors_name_key_and_store(store):
    for operation in (store.get_bytes, store.get_tags, lambda key: store.put_tags(key, {"a": "b"})):
        with pytest.raises(ObjectNotFound) as caught:
            operation("lake/none.parquet")
        assert caught.value.key == "lake/none.parquet"
        assert "lake/none.parquet" in str(caught.value) and store.describe() in str(caught.value)
    with pytest.raises(ObjectNotFound):
        store.copy("lake/none.parquet", "lake/other.parquet")
    assert not store.exists("lake/other.parquet")
    assert store.delete("lake/none.parquet") is False


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "a/../../b",
        "..",
        "a//b",
        "a/",
        "./a",
        "a/./b",
        "a\\b",
        "x" + TAGS_SUFFIX,
        TMP_PREFIX + "x",
    ],
)
def test_unsafe_keys_are_refused_on_both_stores(store, key):
    with pytest.raises(InvalidKey) as caught:
        store.put_bytes(key, b"x")
    assert repr(key) in str(caught.value)
    assert store.list_keys() == []


def test_put_many_gives_each_object_the_tags_and_content_type_of_its_put(store, s3_endpoint):
    store.put_bytes("reports/b.csv", b"old", tags={"incident": "INC-0"})
    store.put_many({
        "reports/a.md": Put(b"# a", tags={"incident": "INC-1"}, content_type="text/markdown"),
        "reports/b.csv": b"plain bytes",  # put semantics: no tags given, none kept
    })
    assert store.get_bytes("reports/a.md") == b"# a" and store.get_bytes("reports/b.csv") == b"plain bytes"
    assert (store.get_tags("reports/a.md"), store.get_tags("reports/b.csv")) == ({"incident": "INC-1"}, {})
    assert store.list_keys("reports/") == ["reports/a.md", "reports/b.csv"]  # sidecars are not objects
    if isinstance(store, S3ObjectStore):
        head = s3_endpoint.client().head_object(Bucket=store.bucket, Key="reports/a.md")
        assert head["ContentType"] == "text/markdown"
    with pytest.raises(InvalidTags):
        store.put_many({"reports/c.md": Put(b"c", tags={"aws:x": "1"})})
    assert not store.exists("reports/c.md")


@pytest.mark.parametrize(
    "tags", [{"batch": "a|b"}, {"k": "x" * 257}, {f"t{i}": "v" for i in range(11)}, {"aws:x": "1"}]
)
def test_tags_s3_would_reject_are_refused_on_both_stores(store, tags):
    with pytest.raises(InvalidTags):
        store.put_bytes("a.csv", b"x", tags=tags)
    assert not store.exists("a.csv")


def test_delete_many_removes_every_key_and_its_tags_and_ignores_missing_ones(store):
    keys = [f"landing/stream/b{i:04d}.parquet" for i in range(1203)]  # more than one S3 DeleteObjects request
    store.put_many({key: b"x" for key in keys})
    store.put_bytes("landing/stream/tagged", b"t", tags={"incident": "INC-1"})
    store.put_bytes("landing/stream/kept", b"k")
    store.delete_many([*keys, "landing/stream/tagged", "landing/stream/never-written"])
    assert store.list_keys("landing/") == ["landing/stream/kept"]
    store.put_bytes("landing/stream/tagged", b"again")
    assert store.get_tags("landing/stream/tagged") == {}  # the old tags went with the object
    store.delete_many([])


def test_s3_prefix_scopes_every_operation(s3_endpoint):
    scoped = s3_store(s3_endpoint, prefix="tenant/one")
    scoped.put_bytes("lake/a.parquet", b"a", tags={"k": "v"})
    scoped.copy("lake/a.parquet", "lake/b.parquet")
    raw = s3_endpoint.client().list_objects_v2(Bucket=scoped.bucket)
    assert sorted(item["Key"] for item in raw["Contents"]) == [
        "tenant/one/lake/a.parquet",
        "tenant/one/lake/b.parquet",
    ]
    assert scoped.list_keys("lake/") == ["lake/a.parquet", "lake/b.parquet"]
    assert scoped.polars_source("lake/a.parquet") == f"s3://{scoped.bucket}/tenant/one/lake/a.parquet"


def test_factory_builds_both_kinds(tmp_path, s3_endpoint):
    for url in (str(tmp_path / "plain"), f"file://{tmp_path}/viaurl"):
        local = object_store_from_url(url)
        assert isinstance(local, LocalObjectStore)
        local.put_bytes("k", b"v")
        assert local.get_bytes("k") == b"v"
    assert (tmp_path / "viaurl" / "k").read_bytes() == b"v"

    bucket = s3_endpoint.create_bucket()
    remote = object_store_from_url(f"s3://{bucket}/pre", s3=endpoint_settings(s3_endpoint))
    assert isinstance(remote, S3ObjectStore)
    remote.put_bytes("k", b"v")
    assert s3_endpoint.client().get_object(Bucket=bucket, Key="pre/k")["Body"].read() == b"v"
    assert remote.storage_options == {
        "aws_endpoint_url": s3_endpoint.endpoint_url,
        "aws_allow_http": "true",
        "aws_region": s3_endpoint.region,
        "aws_access_key_id": s3_endpoint.access_key_id,
        "aws_secret_access_key": s3_endpoint.secret_access_key,
    }

    for bad in ("gs://bucket/x", "s3:///nobucket", "file://host/x"):
        with pytest.raises(StorageError):
            object_store_from_url(bad)


# ------------------------------------------------------------------------------------- local atomicity


def test_failed_replace_keeps_old_object_and_leaves_no_temp_file(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path)
    store.put_bytes("lake/p.parquet", b"old complete content")

    def refuse(*_args):
        raise OSError("simulated failure at rename")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="simulated failure"):
        store.put_bytes("lake/p.parquet", b"new content that never lands")
    monkeypatch.undo()

    assert store.get_bytes("lake/p.parquet") == b"old complete content"
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["p.parquet"]


def test_writer_killed_mid_write_leaves_old_object_and_hides_its_debris(tmp_path):
    """A real crash: the child process dies (os._exit) after writing the temp file, before the rename."""
    store = LocalObjectStore(tmp_path)
    store.put_bytes("lake/p.parquet", b"old complete content")
    child = textwrap.dedent(
        f"""
        import os
        from tradepulse_assets.storage.object_store import LocalObjectStore
        os.fsync = lambda fd: os._exit(9)   # die between the partial write and the rename, no cleanup
        LocalObjectStore({str(tmp_path)!r}).put_bytes("lake/p.parquet", b"N" * 1_000_000)
        """
    )
    result = subprocess.run([sys.executable, "-c", child], check=False, timeout=120)
    assert result.returncode == 9

    debris = [p.name for p in (tmp_path / "lake").iterdir() if p.name.startswith(TMP_PREFIX)]
    assert len(debris) == 1  # the crash really left a temporary file behind ...
    assert store.get_bytes("lake/p.parquet") == b"old complete content"  # ... but readers see the old object
    assert store.list_keys() == ["lake/p.parquet"]
    assert [info.key for info in store.list()] == ["lake/p.parquet"]


def test_local_store_cannot_escape_its_root(tmp_path):
    store = LocalObjectStore(tmp_path / "root")
    with pytest.raises(InvalidKey):
        store.path("../outside")
    assert store.path("a/b").is_relative_to(tmp_path / "root")


def test_get_many_reads_every_object_and_names_a_missing_one(store):
    objects = {f"landing/stream/b{i:04d}.parquet": bytes([i % 256]) * (i + 1) for i in range(40)}
    store.put_many(objects)
    assert store.get_many(list(objects)) == objects
    assert store.get_many([]) == {}
    with pytest.raises(ObjectNotFound, match="landing/stream/never-written"):
        store.get_many([*objects, "landing/stream/never-written"])
