"""Connectors: read a vendor drop the same way from a directory, an S3 bucket or an HTTP API.

Why one protocol with typed errors: ingestion must tell "not published yet" (None: wait, then the lag sensor
decides) from "the vendor is down" (``VendorUnavailable``: retried, then an incident) from "our credentials
are wrong" (``VendorAuthError``: retrying cannot help, page a person). Every error names the URL or
market/session, and never the token.
"""

import datetime as dt
import json
import re
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import polars as pl

from tradepulse_assets.core.http import HttpClient, HttpPolicy, HttpRedirectError, HttpUnavailable, origin
from tradepulse_assets.feeds.confined import (
    ConfinementError,
    EntryNotFound,
    check_name,
    list_dirs_confined,
    read_confined,
)
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


class VendorRefused(VendorError):
    """An entry of the drop that would read outside it (symlink, hard link, traversal name, other origin)."""


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
    """A manifest file name as a plain name: traversal is refused, hidden/underscore names are not vendor files."""
    try:
        check_name(name, f"{where}/{name}")
    except ConfinementError as exc:
        raise VendorRefused(str(exc)) from None
    if name.startswith((".", "_")):
        raise VendorNotFound(f"{where}/{name}: not a vendor file (hidden and _ names are never served)")
    return name


class DirectoryConnector:
    """A drop on a local or mounted filesystem: ``<root>/<market>/<session>/``.

    Nothing outside ``root`` is ever read: symlinks, hard-linked files and traversal names are refused with
    ``VendorRefused`` naming the entry (``feeds.confined``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _read(self, market: str, session: dt.date, name: str) -> bytes:
        where = f"{self.root}/{market}/{session}/{name}"
        try:
            return read_confined(self.root, market, session.isoformat(), name)
        except ConfinementError as exc:
            raise VendorRefused(f"{self.root}/{exc}") from None
        except EntryNotFound:
            raise VendorNotFound(f"{where}: no such file ({market} {session})") from None

    def list_sessions(self, market: str) -> list[dt.date]:
        return _sessions_from_names(list_dirs_confined(self.root, market))

    def read_manifest(self, market: str, session: dt.date) -> Manifest | None:
        try:
            data = self._read(market, session, MANIFEST_NAME)
        except VendorNotFound:
            return None
        return Manifest.from_json(data, f"{self.root}/{market}/{session}/{MANIFEST_NAME}")

    def read_file(self, market: str, session: dt.date, name: str) -> bytes:
        return self._read(market, session, _safe_name(name, f"{self.root}/{market}/{session}"))

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


def _refusal_of(body: bytes) -> str | None:
    """The server's reason when ``vendor serve`` refused an entry outside its root (403 with ``refused``)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return str(doc.get("error")) if isinstance(doc, dict) and doc.get("refused") else None


#: The variable holding the bearer token of the vendor HTTP API: this connector's and ``vendor serve``'s.
TOKEN_ENV = "TRADEPULSE_VENDOR_TOKEN"


class HttpConnector:
    """The vendor HTTP API served by ``vendor serve`` (bearer token): GET /v1/<market>/... .

    Transport, retries and redirects are ``core.http``'s: the token never follows a redirect to another
    origin, same-origin redirects are capped (``max_redirects``), and an answer that ends on another origin is
    refused (``VendorRefused``): the drop is the vendor's origin, nothing else.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_redirects: int = 3,
    ):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout, self.retries = timeout, int(retries)
        policy = HttpPolicy(
            attempts=self.retries + 1,
            backoff=backoff,
            connect_timeout=timeout,
            read_timeout=timeout,
            max_redirects=max_redirects,
        )
        self._client = HttpClient(policy)

    def __repr__(self) -> str:  # never show the token
        return f"HttpConnector({self.base_url!r}, token=***, timeout={self.timeout}, retries={self.retries})"

    def _get(self, path: str, what: str) -> bytes:
        url = f"{self.base_url}{path}"
        try:
            answer = self._client.get(url, headers={"Authorization": f"Bearer {self._token}"})
        except HttpRedirectError as exc:
            raise VendorRefused(f"GET {url} ({what}): {exc}") from None
        except HttpUnavailable as exc:
            raise VendorUnavailable(f"GET {url} ({what}): unavailable ({exc})") from None
        if origin(answer.url) != origin(url):
            raise VendorRefused(
                f"GET {url} ({what}): redirected to another origin {origin(answer.url)}; refused "
                "(the token was not sent there)"
            )
        if answer.status == 403 and (refused := _refusal_of(answer.body)):
            raise VendorRefused(f"GET {url} ({what}): the vendor server refused {refused}")
        if answer.status in (401, 403):
            raise VendorAuthError(f"GET {url} ({what}): HTTP {answer.status}, token rejected")
        if answer.status == 404:
            raise VendorNotFound(f"GET {url} ({what}): HTTP 404")
        if answer.status == 429 or answer.status >= 500:
            raise VendorUnavailable(
                f"GET {url} ({what}): unavailable after {answer.attempts} attempt(s) (HTTP {answer.status})"
            )
        if not answer.ok:
            raise VendorError(f"GET {url} ({what}): HTTP {answer.status}")
        return answer.body

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
