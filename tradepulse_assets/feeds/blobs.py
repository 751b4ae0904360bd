"""Whole files under one base location (a directory, an S3 prefix or an HTTPS folder), by relative path.

Why: a real vendor's layout is not our drop layout (a Databento batch-job folder, a tree of per-day flat
files, a path pattern), but the transport questions are the same as for our own connectors: which errors are
"not there" (``VendorNotFound``), "down" (``VendorUnavailable``) or "refused" (``VendorAuthError``). So the
vendor-format connectors read through this one small interface, and the S3 and HTTP variants delegate to
``S3Connector`` / ``HttpConnector`` instead of repeating their error mapping and retries.
"""

import os
from pathlib import Path, PurePosixPath
from typing import Protocol

from tradepulse_assets.feeds.connectors import (
    HttpConnector,
    S3Connector,
    VendorError,
    VendorNotFound,
    VendorUnavailable,
)


class Blobs(Protocol):
    url: str

    def get(self, path: str) -> bytes:
        """The bytes at ``path`` (relative, ``/``-separated); ``VendorNotFound`` when absent."""
        ...

    def list(self, folder: str = "") -> list[str]:
        """Names directly under ``folder`` (files and folders); ``VendorError`` if the transport cannot."""
        ...

    def check(self) -> None: ...


def safe_relative(path: str, where: str) -> str:
    """``path`` normalised, refusing absolute paths, ``..`` and hidden/underscore components."""
    parts = PurePosixPath(path).parts
    if (
        not path
        or path.startswith("/")
        or any(p in ("", ".", "..") or p.startswith((".", "_")) for p in parts)
    ):
        raise VendorNotFound(f"{where}: invalid relative path {path!r}")
    return "/".join(parts)


class DirectoryBlobs:
    """Files under a local or mounted folder. Symbolic links are refused: a vendor folder holds files."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.url = str(self.root)

    def _path(self, path: str) -> Path:
        target = self.root / safe_relative(path, self.url)
        for link in (target, *target.parents):
            if link == self.root:
                break
            if link.is_symlink():
                raise VendorNotFound(f"{target}: refusing a symbolic link in a vendor folder ({link})")
        return target

    def get(self, path: str) -> bytes:
        target = self._path(path)
        if not target.is_file():
            raise VendorNotFound(f"{target}: no such file")
        return target.read_bytes()

    def list(self, folder: str = "") -> list[str]:
        target = self._path(folder) if folder else self.root
        if not target.is_dir():
            return []
        return sorted(p.name for p in target.iterdir() if not p.is_symlink())

    def check(self) -> None:
        if not self.root.is_dir():
            raise VendorUnavailable(f"vendor folder {self.root} does not exist or is not a directory")


class S3Blobs:
    """Objects under ``s3://bucket/prefix``."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self._s3 = S3Connector(client, bucket, prefix)
        self.url = f"s3://{bucket}/{self._s3.prefix}".rstrip("/")

    def get(self, path: str) -> bytes:
        key = self._s3._key(safe_relative(path, self.url))
        return self._s3.get_key(key, path)

    def list(self, folder: str = "") -> list[str]:
        prefix = self._s3._key(safe_relative(folder, self.url)) if folder else self._s3.prefix
        return sorted(self._s3.list_prefixes(f"{prefix}/" if prefix else ""))

    def check(self) -> None:
        self._s3.check_connectivity()


class HttpBlobs:
    """Files served under an HTTPS folder URL (bearer token). HTTP has no listing: formats that need one
    (several Databento jobs, discovering flat files) name their files from the calendar or one job folder."""

    def __init__(self, base_url: str, token: str = "", timeout: float = 10.0, **retry):
        self._http = HttpConnector(base_url, token=token, timeout=timeout, **retry)
        self.url = self._http.base_url

    def get(self, path: str) -> bytes:
        return self._http.get("/" + safe_relative(path, self.url), path)

    def list(self, folder: str = "") -> list[str]:
        raise VendorError(
            f"{self.url}: an HTTP vendor folder cannot be listed; point the source at one job folder"
        )

    def check(self) -> None:
        pass  # nothing to ask without knowing a file; the first read reports an unreachable vendor


def blobs_from_url(url: str, *, token: str = "", timeout: float = 10.0, s3_client_factory=None) -> Blobs:
    """A directory, ``s3://bucket/prefix`` (client from ``s3_client_factory()``) or ``http(s)://``."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3Blobs(s3_client_factory(), bucket, prefix)
    if url.startswith(("http://", "https://")):
        return HttpBlobs(url, token=token, timeout=timeout)
    return DirectoryBlobs(url)


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
