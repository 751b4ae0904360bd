"""One object-store interface over a local directory and an S3 bucket.

Why: the embedded profile keeps the lake, landing files and quarantine under ``$TRADEPULSE_HOME``; the
production profile keeps them in an S3 bucket (any endpoint). Everything above this module writes *keys*,
never paths, so the same code runs on both, and the behaviour tests run the same assertions against both
implementations.

Guarantees both implementations give:

- **Atomic writes.** ``put_bytes`` is one ``put_object`` on S3; locally it writes a temporary file in the
  target directory, fsyncs it and ``os.replace``-s it into place, so a reader sees the old bytes or the new
  bytes, never a torn file, and a crashed writer leaves no visible partial object (temporary names are hidden
  from ``list``). A temporary file a killed writer left (``.tp-tmp-<name>.<pid>.*``) is removed by the next
  write of the same key, and by ``tradepulse-cli doctor``.
- **Group commits.** ``put_many`` writes many objects with a durability cost bounded per call, not per
  object: locally every temporary file is written, then one ``syncfs`` flushes them all before the renames
  and one fsync per directory makes the renames durable (falling back to per-file fsyncs where ``syncfs`` is
  missing); on S3 the puts run concurrently. Each object is still replaced atomically; the group is not a
  transaction (a crash leaves a prefix of it, which an idempotent retry completes). An object given as a
  :class:`Put` carries its tags and content type, as ``put_bytes`` would give them.
- **Tags.** S3 object tags on S3; locally a sidecar ``<key>.tags.json`` (written atomically, hidden from
  ``list``). Tags follow S3 semantics on both: ``put_bytes`` replaces the tag set (no tags = none),
  ``put_tags`` replaces it, ``copy`` copies it. Tag keys/values are validated against S3's rules on both
  stores, so a tag accepted locally is never rejected in production.
- **Keys** are validated the same way (no leading ``/``, no empty, ``.`` or ``..`` segments) so a key can
  never escape the local root and never means two different objects on S3.
- **Polars access.** ``polars_source(key)`` plus ``storage_options`` let ``pl.read_parquet``/``scan_parquet``
  read an object directly (a local path, or ``s3://bucket/key`` with credentials and endpoint).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tradepulse_assets.core.io import TMP_PREFIX, S3Settings, atomic_write, atomic_write_many, s3_client
from tradepulse_assets.storage.home import tradepulse_home

#: Suffix of the local tag sidecar; reserved on both stores so a key means the same object everywhere.
TAGS_SUFFIX = ".tags.json"

_S3_MAX_TAGS = 10
_S3_DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
_TAG_CHARS = re.compile(r"^[\w .:/=+\-@]*$", re.UNICODE)


class StorageError(Exception):
    """Base class of object-store errors."""


class InvalidKey(StorageError, ValueError):
    """A key (or prefix) that could escape the store root or name two objects."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid object key {key!r}: {reason}")
        self.key = key
        self.reason = reason


class InvalidTags(StorageError, ValueError):
    """Tags that S3 would reject."""


class ObjectNotFound(StorageError, LookupError):
    """The key does not exist in the store."""

    def __init__(self, key: str, store: str) -> None:
        super().__init__(f"object {key!r} not found in {store}")
        self.key = key
        self.store = store


@dataclass(frozen=True)
class Put:
    """One object of a ``put_many`` with what ``put_bytes`` would also set: its tag set and content type."""

    data: bytes
    tags: Mapping[str, str] | None = None
    content_type: str | None = None


def as_put(value: "bytes | Put") -> Put:
    return value if isinstance(value, Put) else Put(value)


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object. ``etag`` is the MD5 hex of the content on both stores (S3's single-put ETag)."""

    key: str
    size: int
    etag: str
    modified: datetime


def validate_key(key: str, *, prefix: bool = False) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidKey`.

    With ``prefix=True`` the empty string and a trailing ``/`` are allowed (listing prefixes).
    """
    if not isinstance(key, str):
        raise InvalidKey(repr(key), "keys are strings")
    if key == "":
        if prefix:
            return key
        raise InvalidKey(key, "empty key")
    if key.startswith("/"):
        raise InvalidKey(key, "leading '/' (keys are relative to the store root)")
    if "\\" in key or "\x00" in key:
        raise InvalidKey(key, "backslash or NUL character")
    segments = key.split("/")
    if prefix and segments[-1] == "":
        segments = segments[:-1]
    for segment in segments:
        if segment == "":
            raise InvalidKey(key, "empty path segment ('//' or trailing '/')")
        if segment in (".", ".."):
            raise InvalidKey(key, f"'{segment}' segment")
        if segment.startswith(TMP_PREFIX):
            raise InvalidKey(key, f"segments starting with {TMP_PREFIX!r} are reserved for temporary files")
    if not prefix and key.endswith(TAGS_SUFFIX):
        raise InvalidKey(key, f"the suffix {TAGS_SUFFIX!r} is reserved for tag sidecars")
    return key


def validate_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Return tags as a plain dict if S3 would accept them, else raise :class:`InvalidTags`."""
    if not tags:
        return {}
    if len(tags) > _S3_MAX_TAGS:
        raise InvalidTags(f"at most {_S3_MAX_TAGS} tags per object, got {len(tags)}")
    clean: dict[str, str] = {}
    for name, value in tags.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidTags(f"tag {name!r}={value!r}: keys and values are strings")
        if not 1 <= len(name) <= 128 or len(value) > 256:
            raise InvalidTags(f"tag {name!r}: key 1-128 characters, value at most 256")
        if not _TAG_CHARS.match(name) or not _TAG_CHARS.match(value):
            raise InvalidTags(f"tag {name!r}={value!r}: only letters, digits, spaces and + - = . _ : / @")
        if name.lower().startswith("aws:"):
            raise InvalidTags(f"tag {name!r}: the 'aws:' prefix is reserved")
        clean[name] = value
    return clean


@runtime_checkable
class ObjectStore(Protocol):
    """The operations every store offers; keys are ``/``-separated and relative to the store root."""

    def describe(self) -> str: ...

    def put_bytes(
        self, key: str, data: bytes, tags: Mapping[str, str] | None = None, content_type: str | None = None
    ) -> None: ...

    def put_many(self, objects: Mapping[str, bytes | Put]) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[ObjectInfo]: ...

    def list_keys(self, prefix: str = "") -> list[str]: ...

    def delete(self, key: str) -> bool: ...

    def delete_many(self, keys: Iterable[str]) -> None: ...

    def get_tags(self, key: str) -> dict[str, str]: ...

    def put_tags(self, key: str, tags: Mapping[str, str]) -> None: ...

    def copy(self, src: str, dst: str) -> None: ...

    def polars_source(self, key: str) -> str: ...

    @property
    def storage_options(self) -> dict[str, str] | None: ...


# --------------------------------------------------------------------------------------------------- local


#: A temporary file whose writer cannot be shown dead (same PID alive, or another host) is stale after this.
STALE_TEMP_SECONDS = 3600.0


@dataclass(frozen=True)
class TempFile:
    """A ``.tp-tmp-*`` file an interrupted write left behind (the writer was killed before its rename)."""

    path: Path
    size: int
    age_seconds: float
    writer_pid: int | None


def _writer_pid(name: str) -> int | None:
    """The PID in ``.tp-tmp-<target>.<pid>.<random>`` (None for temp files of older versions)."""
    parts = name.split(".")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(temp: TempFile, stale_after: float) -> bool:
    if temp.age_seconds >= stale_after:
        return True
    return temp.writer_pid is not None and temp.writer_pid != os.getpid() and not _pid_alive(temp.writer_pid)


def stale_temp_files(directory: Path, target: str | None = None, *, stale_after: float = STALE_TEMP_SECONDS,
                     recursive: bool = False) -> list[TempFile]:
    """Temporary files under ``directory`` (of ``target``'s writes only, when given) whose writer is dead
    (its PID is gone on this host) or that are older than ``stale_after`` seconds. A live writer's file is
    never returned, so sweeping cannot break a concurrent write."""
    prefix = TMP_PREFIX + (f"{target}." if target else "")
    walk = os.walk(directory) if recursive else [(str(directory), [], _names(directory))]
    now = datetime.now(UTC).timestamp()
    found = []
    for dirpath, _, filenames in walk:
        for name in filenames:
            if not name.startswith(prefix):
                continue
            path = Path(dirpath, name)
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # its writer just renamed it
            temp = TempFile(path, info.st_size, max(0.0, now - info.st_mtime), _writer_pid(name))
            if _is_stale(temp, stale_after):
                found.append(temp)
    return sorted(found, key=lambda t: t.path)


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove_temp_files(temps: list[TempFile]) -> int:
    """Delete the given temporary files; returns how many were removed (already gone is fine)."""
    removed = 0
    for temp in temps:
        with contextlib.suppress(FileNotFoundError):
            temp.path.unlink()
            removed += 1
    return removed


def _by_directory(paths: Iterable[Path]) -> dict[Path, list[Path]]:
    grouped: dict[Path, list[Path]] = {}
    for path in paths:
        grouped.setdefault(path.parent, []).append(path)
    return grouped


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class LocalObjectStore:
    """Objects as files under ``root``; tags in ``<key>.tags.json`` sidecars.

    The object and its sidecar are two atomic writes, data first: a writer that dies between them leaves the
    new bytes with the previous tag set, which the retry (puts are idempotent) corrects. Bytes are never lost.
    """

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        """``fsync=False`` keeps writes atomic but lets the page cache decide when they reach the disk."""
        self.root = Path(root).resolve()
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def describe(self) -> str:
        return f"local store {self.root}"

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (validated, always inside ``root``)."""
        return self.root.joinpath(*validate_key(key).split("/"))

    def _tags_path(self, key: str) -> Path:
        path = self.path(key)
        return path.with_name(path.name + TAGS_SUFFIX)

    def _existing(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFound(key, self.describe())
        return path

    def put_bytes(
        self, key: str, data: bytes, tags: Mapping[str, str] | None = None, content_type: str | None = None
    ) -> None:
        """Atomically replace ``key``; its tag set becomes ``tags`` (``content_type`` is ignored).

        Temporary files an interrupted earlier write of the same key left behind are removed first.
        """
        clean = validate_tags(tags)
        path = self.path(key)
        remove_temp_files(stale_temp_files(path.parent, path.name))
        atomic_write(path, bytes(data), fsync=self.fsync)
        self._write_tags(key, clean)

    def put_many(self, objects: Mapping[str, bytes | Put]) -> None:
        """Atomically replace each key with one group commit (see the module docstring); its tag set becomes
        the :class:`Put`'s (plain bytes: none). A sidecar is written in the same group, after its object."""
        writes, untagged = [], []
        for key, value in objects.items():
            put = as_put(value)
            tags = validate_tags(put.tags)
            path = self.path(key)
            writes.append((path, bytes(put.data)))
            if tags:
                writes.append((self._tags_path(key), json.dumps(tags, sort_keys=True).encode()))
            else:
                untagged.append(path)
        if not writes:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_many(writes, anchor=self.root, fsync=self.fsync)
        # No tags given, none kept: the sidecars that exist are found with one listing per directory, not
        # one failed unlink per object (1,440 of them for a streamed session).
        for directory, paths in _by_directory(untagged).items():
            sidecars = {name for name in _names(directory) if name.endswith(TAGS_SUFFIX)}
            for path in paths:
                if path.name + TAGS_SUFFIX in sidecars:
                    with contextlib.suppress(FileNotFoundError):
                        path.with_name(path.name + TAGS_SUFFIX).unlink()

    def _write_tags(self, key: str, tags: dict[str, str]) -> None:
        sidecar = self._tags_path(key)
        if tags:
            atomic_write(sidecar, json.dumps(tags, sort_keys=True).encode(), fsync=self.fsync)
        else:
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key, self.describe()) from None

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """``get_bytes`` of each key (:class:`ObjectNotFound` for the first missing one)."""
        return {key: self.get_bytes(key) for key in keys}

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def _walk_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted. Built from strings: a streamed session's folder holds 1,440
        objects and a poll lists it every time; through ``pathlib`` one listing cost 40 ms of CPU."""
        validate_key(prefix, prefix=True)
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        root = str(self.root)
        start = os.path.join(root, *directory.split("/")) if directory else root
        found: list[str] = []
        if not os.path.isdir(start):
            return found
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(TMP_PREFIX)]
            folder = os.path.relpath(dirpath, root).replace(os.sep, "/")
            folder = "" if folder == "." else folder + "/"
            found.extend(folder + name for name in filenames
                         if not name.startswith(TMP_PREFIX) and not name.endswith(TAGS_SUFFIX))
        return sorted(key for key in found if key.startswith(prefix))

    def list_keys(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix`` (string prefix, as on S3), sorted; sidecars and temp files hidden."""
        return self._walk_keys(prefix)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Like :meth:`list_keys` with size, MD5 etag (reads each file) and modification time."""
        infos = []
        for key in self._walk_keys(prefix):
            full = self.root.joinpath(*key.split("/"))  # as listed: not re-validated
            stat = full.stat()
            infos.append(
                ObjectInfo(
                    key=key,
                    size=stat.st_size,
                    etag=_md5_file(full),
                    modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                )
            )
        return infos

    def delete(self, key: str) -> bool:
        """Remove ``key`` and its tags; return whether it existed (deleting twice is harmless)."""
        path = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            self._tags_path(key).unlink()
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove every key and its tags; a missing key is no error."""
        for key in keys:
            self.delete(key)

    def get_tags(self, key: str) -> dict[str, str]:
        self._existing(key)
        try:
            raw = self._tags_path(key).read_text()
        except FileNotFoundError:
            return {}
        return dict(json.loads(raw))

    def put_tags(self, key: str, tags: Mapping[str, str]) -> None:
        clean = validate_tags(tags)
        self._existing(key)
        self._write_tags(key, clean)

    def copy(self, src: str, dst: str) -> None:
        data = self.get_bytes(src)
        tags = self.get_tags(src)
        self.put_bytes(dst, data, tags=tags)

    def polars_source(self, key: str) -> str:
        return str(self.path(key))

    @property
    def storage_options(self) -> dict[str, str] | None:
        return None


# ------------------------------------------------------------------------------------------------------ S3


def _is_not_found(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"404", "NoSuchKey", "NotFound"} or status == 404


class S3ObjectStore:
    """Objects in ``bucket`` under ``prefix``; tags are real S3 object tags.

    ``settings`` are the ones the client was built with; they also give polars its ``storage_options``.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", settings: S3Settings | None = None):
        if len(bucket) < 3 or "/" in bucket:
            raise StorageError(f"invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix + "/", prefix=True)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix + "/" if prefix else ""
        self.settings = settings or S3Settings()

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.client.meta.endpoint_url}"

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _strip(self, full: str) -> str:
        return full[len(self.prefix) :]

    def put_bytes(
        self, key: str, data: bytes, tags: Mapping[str, str] | None = None, content_type: str | None = None
    ) -> None:
        """One ``put_object`` (atomic on S3) carrying the tag set."""
        clean = validate_tags(tags)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key), "Body": bytes(data)}
        if clean:
            kwargs["Tagging"] = urllib.parse.urlencode(clean)
        if content_type:
            kwargs["ContentType"] = content_type
        self.client.put_object(**kwargs)

    def put_many(self, objects: Mapping[str, bytes | Put]) -> None:
        """One ``put_object`` per key (with a :class:`Put`'s tags and content type), eight at a time: S3
        has no multi-object put."""
        puts = [(key, as_put(value)) for key, value in objects.items()]

        def put(item: tuple[str, Put]) -> None:
            key, one = item
            self.put_bytes(key, one.data, tags=one.tags, content_type=one.content_type)

        if len(puts) <= 1:
            for item in puts:
                put(item)
            return
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-put") as pool:
            list(pool.map(put, puts))

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as error:
            if _is_not_found(error):
                raise ObjectNotFound(key, self.describe()) from None
            raise
        return bytes(response["Body"].read())

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """``get_bytes`` of each key, eight at a time: a streamed session's landing reads 1,440 objects, one
        round trip each (:class:`ObjectNotFound` for a missing one)."""
        wanted = list(keys)
        if len(wanted) <= 1:
            return {key: self.get_bytes(key) for key in wanted}
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-get") as pool:
            return dict(zip(wanted, pool.map(self.get_bytes, wanted)))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as error:
            if _is_not_found(error):
                return False
            raise
        return True

    def _pages(self, prefix: str) -> list[dict[str, Any]]:
        validate_key(prefix, prefix=True)
        paginator = self.client.get_paginator("list_objects_v2")
        contents: list[dict[str, Any]] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            contents.extend(page.get("Contents", []))
        contents.sort(key=lambda item: item["Key"])
        return contents

    def list_keys(self, prefix: str = "") -> list[str]:
        return [self._strip(item["Key"]) for item in self._pages(prefix)]

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return [
            ObjectInfo(
                key=self._strip(item["Key"]),
                size=int(item["Size"]),
                etag=str(item["ETag"]).strip('"'),
                modified=item["LastModified"].astimezone(UTC),
            )
            for item in self._pages(prefix)
        ]

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        return existed

    def delete_many(self, keys: Iterable[str]) -> None:
        """``DeleteObjects``, 1,000 keys a request: a compacted streaming session costs 2 requests, not
        2,880 (``delete`` asks whether the key exists first). A missing key is no error; a refusal raises."""
        full = [self._full(key) for key in keys]
        for start in range(0, len(full), _S3_DELETE_BATCH):
            batch = [{"Key": key} for key in full[start : start + _S3_DELETE_BATCH]]
            request = {"Objects": batch, "Quiet": True}
            refused = self.client.delete_objects(Bucket=self.bucket, Delete=request).get("Errors") or []
            if refused:
                first = refused[0]
                raise StorageError(
                    f"{self.describe()}: {len(refused)} of {len(batch)} deletions refused, e.g. "
                    f"{self._strip(first['Key'])}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )

    def get_tags(self, key: str) -> dict[str, str]:
        try:
            response = self.client.get_object_tagging(Bucket=self.bucket, Key=self._full(key))
        except Exception as error:
            if _is_not_found(error):
                raise ObjectNotFound(key, self.describe()) from None
            raise
        return {item["Key"]: item["Value"] for item in response.get("TagSet", [])}

    def put_tags(self, key: str, tags: Mapping[str, str]) -> None:
        clean = validate_tags(tags)
        tag_set = [{"Key": name, "Value": value} for name, value in clean.items()]
        try:
            self.client.put_object_tagging(
                Bucket=self.bucket, Key=self._full(key), Tagging={"TagSet": tag_set}
            )
        except Exception as error:
            if _is_not_found(error):
                raise ObjectNotFound(key, self.describe()) from None
            raise

    def copy(self, src: str, dst: str) -> None:
        """Server-side copy; S3 copies the tag set by default (``TaggingDirective=COPY``)."""
        source = {"Bucket": self.bucket, "Key": self._full(src)}
        try:
            self.client.copy_object(Bucket=self.bucket, Key=self._full(dst), CopySource=source)
        except Exception as error:
            if _is_not_found(error):
                raise ObjectNotFound(src, self.describe()) from None
            raise

    def polars_source(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    @property
    def storage_options(self) -> dict[str, str] | None:
        """polars ``storage_options``: endpoint (unless AWS's own), region, and credentials if known."""
        options: dict[str, str] = {}
        endpoint = self.client.meta.endpoint_url
        host = (urllib.parse.urlparse(endpoint).hostname or "") if endpoint else ""
        if endpoint and not host.endswith("amazonaws.com"):
            options["aws_endpoint_url"] = endpoint
            if endpoint.startswith("http://"):
                options["aws_allow_http"] = "true"
        settings = self.settings
        region = settings.region_name or self.client.meta.region_name
        if region:
            options["aws_region"] = region
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            options["aws_access_key_id"] = settings.aws_access_key_id
            options["aws_secret_access_key"] = settings.aws_secret_access_key
            if settings.aws_session_token:
                options["aws_session_token"] = settings.aws_session_token
        return options


# --------------------------------------------------------------------------------------------------- factory


def object_store_from_url(
    url: str | Path,
    *,
    s3: S3Settings | None = None,
    client: Any = None,
    fsync: bool = True,
) -> LocalObjectStore | S3ObjectStore:
    """Build a store from ``file:///abs/path``, a plain path, or ``s3://bucket[/prefix]``.

    For S3, ``client`` (a boto3 S3 client) wins; otherwise one is made from ``s3`` by the platform's
    one S3 client factory (:func:`tradepulse_assets.core.io.s3_client`; unset fields use boto3's defaults).
    ``fsync`` is the local store's durability policy (S3 puts are durable when they return).
    """
    text = str(url)
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError(f"S3 URL {text!r} has no bucket (expected s3://bucket/prefix)")
        settings = s3 or S3Settings()
        if client is None:
            client = s3_client(settings)
        return S3ObjectStore(client, parsed.netloc, parsed.path.lstrip("/"), settings=settings)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"file URL {text!r} names a host; use file:///absolute/path")
        return LocalObjectStore(Path(urllib.parse.unquote(parsed.path)), fsync=fsync)
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter would be a Windows drive
        raise StorageError(
            f"unsupported object-store URL scheme {parsed.scheme!r} in {text!r} (file, s3 or a path)"
        )
    return LocalObjectStore(Path(text), fsync=fsync)


def runbook_store(lake: ObjectStore) -> ObjectStore:
    """Where the runbook's shared files live: incident timelines, gap files, backfill reports, the health catalog.

    On a remote store (the production profile) the lake's own bucket, under the same relative keys
    (``reports/...``, ``observability/catalog/...``): the daemon, run workers and the CLI on different machines
    all see one copy. In the embedded default, ``$TRADEPULSE_HOME`` itself, where the runbook tells a person to
    look.
    """
    if isinstance(lake, LocalObjectStore):
        return LocalObjectStore(tradepulse_home(), fsync=lake.fsync)
    return lake
