"""The platform's file and S3 primitives: one atomic write, one locked JSONL append, one S3 client factory.

Why one module: every layer that writes (the object store, the simulator's drops, the health catalog, the
audit trail, the notification outbox, the dev supervisor) needs the same two guarantees, and each copy of
them used to differ in a detail that mattered (one fsynced, one did not; one repaired torn lines, one did
not). Here they are written once:

- :func:`atomic_write` writes a temporary file in the target's directory and ``os.replace``-s it into place,
  so a reader sees the old bytes or the new ones, never a torn file. ``fsync`` is a required argument: the
  caller says whether the write must survive power loss (data, manifests: yes; a regenerated config: no).
  :func:`atomic_write_many` does the same for a group of files with one flush for the whole group (one
  ``syncfs`` where Linux has it), so a streaming landing of hundreds of small files is not fsync-bound.
- :func:`append_jsonl` appends one whole JSON line under an exclusive ``flock`` on a sibling ``.lock`` file,
  with one ``write`` on an ``O_APPEND`` descriptor. A line torn by a writer that died mid-write is closed
  with a newline first, so the next record starts on its own line and a reader can name the torn one.
  :func:`read_locked` reads under the shared lock.
- :func:`s3_client` builds every boto3 S3 client of the platform from dagster-aws's ``S3Resource`` settings,
  so endpoint, region, credentials and retry configuration mean the same thing in the Dagster resources,
  the CLI and the connectors. dagster-aws is imported lazily: importing it costs seconds (it pulls in Dagster's test utilities).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "TMP_PREFIX",
    "S3Settings",
    "append_jsonl",
    "append_jsonl_many",
    "atomic_write",
    "atomic_write_many",
    "file_lock",
    "jsonl_line",
    "read_locked",
    "s3_client",
]

#: Prefix of temporary files written by :func:`atomic_write`; listings of our stores hide it.
TMP_PREFIX = ".tp-tmp-"


# ------------------------------------------------------------------------------------------ atomic write


def atomic_write(path: str | os.PathLike[str], data: bytes, *, fsync: bool) -> Path:
    """Replace ``path`` with ``data`` atomically (temporary file in the same directory, then rename).

    With ``fsync=True`` the file and its directory are flushed to disk before returning, so the new bytes
    survive a crash; with ``fsync=False`` the rename is still atomic for readers but may be lost with the
    page cache. A failed write removes its temporary file and leaves the previous content in place.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the writer's PID in the name lets a sweeper tell a dead writer's leftover from a write in progress
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}.{os.getpid()}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if fsync:
        _fsync_dir(target.parent)
    return target


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: some filesystems refuse to fsync directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def _syncfs_function():
    """libc's ``syncfs`` (Linux), or None: flushes one filesystem in one call."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    return function


def _sync_written(paths: list[str], anchor: Path) -> None:
    """Make the data of ``paths`` durable: one ``syncfs`` on ``anchor``'s filesystem, else one fsync each."""
    syncfs = _syncfs_function()
    if syncfs is not None:
        fd = os.open(anchor, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for name in paths:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_many(writes: list[tuple[Path, bytes]], *, anchor: Path, fsync: bool) -> None:
    """Atomically replace each path with its bytes, paying one flush for the whole group.

    Every temporary file is written first, then one ``syncfs`` on ``anchor``'s filesystem flushes them all
    (per-file fsyncs where ``syncfs`` is missing), then the renames, then one fsync per directory. Each file
    is replaced atomically; the group is not a transaction (a crash leaves a prefix of it, which an
    idempotent retry completes). With ``fsync=False`` nothing is flushed, as for :func:`atomic_write`.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for directory in {path.parent for path, _ in writes}:  # once each, not once per file
            directory.mkdir(parents=True, exist_ok=True)
        for path, data in writes:
            fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.{os.getpid()}.", dir=path.parent)
            staged.append((tmp_name, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        if fsync:
            _sync_written([tmp for tmp, _ in staged], anchor)
        for tmp_name, path in staged:
            os.replace(tmp_name, path)
    except BaseException:
        for tmp_name, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        raise
    if fsync:
        for directory in sorted({path.parent for _, path in staged}):
            _fsync_dir(directory)


# ------------------------------------------------------------------------------------------ JSONL append


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, shared: bool = False) -> Iterator[None]:
    """Hold ``flock`` on ``<path>.lock`` (exclusive unless ``shared``) across processes of one host or NFS."""
    lock = _lock_path(Path(path))
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def jsonl_line(record: Mapping[str, Any]) -> bytes:
    """One record as the platform writes it: compact JSON, keys sorted, UTF-8, newline-terminated.

    Raises ``TypeError`` for a value JSON cannot hold, before anything is written.
    """
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any], *, fsync: bool) -> None:
    """Append ``record`` as one whole line of ``path`` under the exclusive lock (multi-process safe).

    If the file ends mid-line (a writer died during its write), a newline is written first so the torn
    line stays on its own and this record is intact.
    """
    append_jsonl_many(path, [record], fsync=fsync)


def append_jsonl_many(path: str | os.PathLike[str], records: Sequence[Mapping[str, Any]], *, fsync: bool) -> None:
    """Append ``records`` in order as one group commit: one lock, one write, one fsync for all of them.

    Every record is serialised before anything is written, so one that JSON cannot hold (``TypeError``)
    appends none of the group.
    """
    if not records:
        return
    target = Path(path)
    payload = b"".join(jsonl_line(record) for record in records)
    with file_lock(target):
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if _ends_mid_line(fd):
                payload = b"\n" + payload
            view = memoryview(payload)
            while view:  # one write unless the disk is full or a signal interrupts; still under the lock
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)


def _ends_mid_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def read_locked(path: str | os.PathLike[str]) -> str:
    """The whole text of ``path`` read under the shared lock (no appender is mid-write); ``""`` if absent."""
    target = Path(path)
    with file_lock(target, shared=True):
        try:
            return target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""


# ------------------------------------------------------------------------------------------ S3 clients


@dataclass(frozen=True)
class S3Settings:
    """The subset of dagster-aws ``S3Resource`` fields the platform sets; ``None`` means boto3's default.

    Credentials left ``None`` come from the AWS default chain (environment, profile, instance role); an
    ``endpoint_url`` left ``None`` honours ``$AWS_ENDPOINT_URL`` (boto3 reads it) or AWS itself.
    """

    endpoint_url: str | None = None
    region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    max_attempts: int = 5

    def resource_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``dagster_aws.s3.S3Resource`` (unset fields left to its defaults)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


def s3_client(settings: S3Settings | None = None) -> Any:
    """A boto3 S3 client configured exactly as ``S3Resource(**settings).get_client()`` would be."""
    from dagster_aws.s3 import S3Resource  # lazy: seconds of import, only where S3 is used

    return S3Resource(**(settings or S3Settings()).resource_fields()).get_client()
