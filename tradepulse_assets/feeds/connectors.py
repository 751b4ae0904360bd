"""Connectors: read a vendor drop the same way from a directory, an S3 bucket or an HTTP API.

Why one protocol with typed errors: ingestion must tell "not published yet" (None: wait, then the lag sensor
decides) from "the vendor is down" (``VendorUnavailable``: retried, then an incident) from "our credentials
are wrong" (``VendorAuthError``: retrying cannot help, page a person). Every error names the URL or
market/session, and never the token.
"""

import datetime as dt
import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import polars as pl

from tradepulse_assets.feeds.manifest import MANIFEST_NAME, Manifest, parse_bar_file

SESSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class VendorError(RuntimeError):
    """Base of connector errors."""


class VendorAuthError(VendorError):
    """Credentials rejected (401/403, S3 AccessDenied): not retried."""


class VendorUnavailable(VendorError):
    """The vendor cannot be reached or answers 5xx, after retries."""


class VendorNotFound(VendorError):
    """A market, session or file the vendor does not have."""


@runtime_checkable
class Connector(Protocol):
    def list_sessions(self, market: str) -> list[dt.date]: ...

    def read_manifest(self, market: str, session: dt.date) -> Manifest | None: ...

    def read_file(self, market: str, session: dt.date, name: str) -> bytes: ...

    def check_connectivity(self) -> None: ...


def file_parser(connector: Connector, market: str, session: dt.date) -> Callable[[str, bytes], pl.DataFrame]:
    """How a connector's files become bars: a vendor format (``feeds/formats.py``) decodes its own files for
    the session; the drop format parses by extension."""
    parser = getattr(connector, "parser", None)
    return parser(market, session) if parser is not None else parse_bar_file


def _sessions_from_names(names) -> list[dt.date]:
    return sorted(dt.date.fromisoformat(n) for n in names if SESSION_RE.match(n))


def _safe_name(name: str, where: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith((".", "_")):
        raise VendorNotFound(f"{where}: invalid file name {name!r}")
    return name


class DirectoryConnector:
    """A drop on a local or mounted filesystem: ``<root>/<market>/<session>/``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _session_dir(self, market: str, session: dt.date) -> Path:
        return self.root / market / session.isoformat()

    def list_sessions(self, market: str) -> list[dt.date]:
        folder = self.root / market
        return _sessions_from_names(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def read_manifest(self, market: str, session: dt.date) -> Manifest | None:
        path = self._session_dir(market, session) / MANIFEST_NAME
        return Manifest.from_json(path.read_bytes(), str(path)) if path.is_file() else None

    def read_file(self, market: str, session: dt.date, name: str) -> bytes:
        path = self._session_dir(market, session) / _safe_name(name, f"{self.root}/{market}/{session}")
        if not path.is_file():
            raise VendorNotFound(f"{path}: no such file ({market} {session})")
        return path.read_bytes()

    def check_connectivity(self) -> None:
        if not self.root.is_dir():
            raise VendorUnavailable(f"vendor directory {self.root} does not exist or is not a directory")


class S3Connector:
    """A drop in an S3 bucket (``dagster_aws.s3.S3Resource(...).get_client()`` or any boto3 client)."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _call(self, what: str, fn, **kwargs):
        import botocore.exceptions as bex

        try:
            return fn(**kwargs)
        except bex.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                raise VendorNotFound(f"{what}: not found ({code})") from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status in (
                401,
                403,
            ):
                raise VendorAuthError(f"{what}: access denied ({code})") from None
            raise VendorUnavailable(f"{what}: S3 error {code or status}") from None
        except (
            bex.EndpointConnectionError,
            bex.ConnectTimeoutError,
            bex.ReadTimeoutError,
            bex.ConnectionClosedError,
        ) as exc:
            raise VendorUnavailable(f"{what}: S3 endpoint unreachable ({type(exc).__name__})") from None

    def get_key(self, key: str, what: str) -> bytes:
        """The bytes of ``key`` (already prefixed), with this connector's error mapping."""
        return self._call(f"{self._url(key)} ({what})", self.client.get_object, Bucket=self.bucket, Key=key)[
            "Body"
        ].read()

    def list_prefixes(self, prefix: str) -> list[str]:
        """The names directly under ``prefix`` (folders without their trailing ``/``, then objects)."""
        folders, objects, token = [], [], None
        while True:
            kwargs = dict(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(f"list {self._url(prefix)}", self.client.list_objects_v2, **kwargs)
            folders += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
            objects += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return folders + objects

    def list_sessions(self, market: str) -> list[dt.date]:
        return _sessions_from_names(self.list_prefixes(self._key(market) + "/"))

    def read_manifest(self, market: str, session: dt.date) -> Manifest | None:
        key = self._key(market, session.isoformat(), MANIFEST_NAME)
        try:
            body = self._call(
                f"{self._url(key)} ({market} {session})", self.client.get_object, Bucket=self.bucket, Key=key
            )["Body"].read()
        except VendorNotFound:
            return None
        return Manifest.from_json(body, self._url(key))

    def read_file(self, market: str, session: dt.date, name: str) -> bytes:
        key = self._key(market, session.isoformat(), _safe_name(name, f"{market} {session}"))
        return self._call(
            f"{self._url(key)} ({market} {session})", self.client.get_object, Bucket=self.bucket, Key=key
        )["Body"].read()

    def check_connectivity(self) -> None:
        self._call(f"s3://{self.bucket}", self.client.head_bucket, Bucket=self.bucket)


class HttpConnector:
    """The vendor HTTP API served by ``vendor serve`` (bearer token): GET /v1/<market>/... ."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout, self.retries, self.backoff, self._sleep = timeout, int(retries), backoff, sleep

    def __repr__(self) -> str:  # never show the token
        return f"HttpConnector({self.base_url!r}, token=***, timeout={self.timeout}, retries={self.retries})"

    def _get(self, path: str, what: str) -> bytes:
        url = f"{self.base_url}{path}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})
        last = ""
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):
                    raise VendorAuthError(f"GET {url} ({what}): HTTP {exc.code}, token rejected") from None
                if exc.code == 404:
                    raise VendorNotFound(f"GET {url} ({what}): HTTP 404") from None
                if exc.code < 500 and exc.code != 429:
                    raise VendorError(f"GET {url} ({what}): HTTP {exc.code}") from None
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}"
            if attempt < self.retries:
                self._sleep(self.backoff * 2**attempt)
        raise VendorUnavailable(
            f"GET {url} ({what}): unavailable after {self.retries + 1} attempt(s) ({last})"
        )

    def get(self, path: str, what: str) -> bytes:
        """GET ``path`` under the base URL with this connector's token, retries and error mapping."""
        return self._get(path, what)

    def list_sessions(self, market: str) -> list[dt.date]:
        body = self._get(f"/v1/{market}/sessions", f"sessions of {market}")
        return sorted(dt.date.fromisoformat(s) for s in json.loads(body)["sessions"])

    def read_manifest(self, market: str, session: dt.date) -> Manifest | None:
        path = f"/v1/{market}/{session.isoformat()}/manifest"
        try:
            body = self._get(path, f"manifest of {market} {session}")
        except VendorNotFound:
            return None
        return Manifest.from_json(body, f"{self.base_url}{path}")

    def read_file(self, market: str, session: dt.date, name: str) -> bytes:
        name = _safe_name(name, f"{market} {session}")
        return self._get(f"/v1/{market}/{session.isoformat()}/files/{name}", f"{market} {session} {name}")

    def check_connectivity(self) -> None:
        self._get("/v1/health", "health check")
