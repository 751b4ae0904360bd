"""A real vendor's delivery seen through our ``Connector``: the same landing, verification and gates.

Why translate at this seam and nowhere else: ingestion already verifies each file against a manifest
(size, sha256, record count), keeps the original bytes under ``landing/raw/`` and quarantines what fails.
A vendor-format connector therefore answers ``read_manifest`` with a manifest *in our format describing the
vendor's own files* (their names, the sizes and hashes the vendor stated, the vendor's condition for the
day) and ``read_file`` with the vendor's original bytes; ``parser`` tells landing how to decode them
(``connectors.file_parser``). A hash mismatch, a corrupt file or a symbology gap is then a
``landing_verification`` fault exactly as in our own format, and the vendor's bytes are what quarantine keeps.

Each format is a ``Layout``: where the session's files are, what the vendor says about them, and how to
decode them into bars for the session. Where a vendor states no hash (flat files), the hash is taken from the
bytes read, so the check proves only that landing kept what was read; where it states no record count, the
count is what the verified file decodes to for the session.
"""

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Protocol

import polars as pl

from tradepulse_assets.feeds.blobs import Blobs
from tradepulse_assets.feeds.connectors import VendorNotFound
from tradepulse_assets.feeds.manifest import BarFileError, Manifest, ManifestFile, sha256_hex
from tradepulse_assets.markets import Market, calendar_for

Decoder = Callable[[str, bytes], pl.DataFrame]
_COUNT_CACHE: OrderedDict = OrderedDict()  # (vendor url, path, sha256, session) -> records: sensors re-ask
_COUNT_CACHE_SIZE = 256


@dataclass(frozen=True)
class VendorFile:
    name: str  # the file's name in our manifest (unique within the session)
    path: str  # where it is, relative to the vendor base
    size: int | None = None  # as the vendor states it; None: not stated
    sha256: str | None = None


@dataclass(frozen=True)
class SessionDelivery:
    """What a vendor delivered for one session, in its own terms."""

    files: tuple[VendorFile, ...]
    condition: str
    decode: Decoder  # (name, bytes) -> the session's bars from that file; raises BarFileError
    revision: int = 1
    published_at: dt.datetime | None = None  # None: the vendor does not say (the session close is used)


class Layout(Protocol):
    def locate(
        self, blobs: Blobs, market: Market, session: dt.date, window: tuple[dt.datetime, dt.datetime]
    ) -> SessionDelivery | None: ...

    def sessions(self, blobs: Blobs, market: Market) -> list[dt.date]: ...


def session_window(market: Market, session: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[open, close) of the session in UTC: what a per-day vendor file contributes to this session."""
    hours = calendar_for(market.market_id, market.calendar).hours(session)
    return hours.open, hours.close


class FormatConnector:
    """One market's deliveries in a vendor format, as our ``Connector`` (see the module docstring)."""

    def __init__(self, market: Market, vendor: str, blobs: Blobs, layout: Layout):
        self.market, self.vendor, self.blobs, self.layout = market, vendor, blobs, layout
        self._located: dict[dt.date, SessionDelivery] = {}
        self._bytes: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"FormatConnector({self.market.market_id}, {self.vendor!r}, {self.blobs.url!r})"

    def _check_market(self, market: str) -> None:
        if market != self.market.market_id:
            raise VendorNotFound(f"{self!r}: asked for market {market}")

    def _read(self, path: str) -> bytes:
        if path not in self._bytes:
            self._bytes = {path: self.blobs.get(path)}  # keep one file: the one landing asks for next
        return self._bytes[path]

    def _delivery(self, session: dt.date) -> SessionDelivery | None:
        delivery = self.layout.locate(self.blobs, self.market, session, session_window(self.market, session))
        if delivery is not None:
            self._located[session] = delivery
        return delivery

    def _count(
        self, delivery: SessionDelivery, session: dt.date, file: VendorFile, data: bytes, digest: str
    ) -> int:
        key = (self.blobs.url, file.path, digest, session)
        if key not in _COUNT_CACHE:
            try:
                _COUNT_CACHE[key] = delivery.decode(file.name, data).height
            except BarFileError:
                return 0  # landing parses again and reports the fault with the file named
            if len(_COUNT_CACHE) > _COUNT_CACHE_SIZE:
                _COUNT_CACHE.popitem(last=False)
        return _COUNT_CACHE[key]

    def _entry(self, delivery: SessionDelivery, session: dt.date, file: VendorFile) -> ManifestFile:
        """Our manifest entry for a vendor file; ``VendorNotFound`` when it is not there."""
        known = (self.blobs.url, file.path, file.sha256, session)
        if file.sha256 and file.size is not None and known in _COUNT_CACHE:  # a sensor asking again
            return ManifestFile(file.name, file.size, file.sha256, _COUNT_CACHE[known])
        data = self._read(file.path)
        digest = file.sha256 or sha256_hex(data)
        size = file.size if file.size is not None else len(data)
        return ManifestFile(file.name, size, digest, self._count(delivery, session, file, data, digest))

    def read_manifest(self, market: str, session: dt.date) -> Manifest | None:
        self._check_market(market)
        delivery = self._delivery(session)
        if delivery is None:
            return None
        try:
            entries = [self._entry(delivery, session, file) for file in delivery.files]
        except VendorNotFound:
            return None  # listed by the vendor but not (yet) there: a download in progress
        published = delivery.published_at or session_window(self.market, session)[1]
        return Manifest(
            market=market,
            session=session,
            revision=delivery.revision,
            published_at=published,
            condition=delivery.condition,
            files=tuple(entries),
            vendor=self.vendor,
        )

    def read_file(self, market: str, session: dt.date, name: str) -> bytes:
        self._check_market(market)
        delivery = self._located.get(session) or self._delivery(session)
        file = next((f for f in delivery.files if f.name == name), None) if delivery else None
        if file is None:
            raise VendorNotFound(f"{self.blobs.url}: {market} {session} has no file {name!r}")
        return self._read(file.path)

    def parser(self, market: str, session: dt.date) -> Decoder:
        self._check_market(market)
        delivery = self._located.get(session) or self._delivery(session)
        if delivery is None:
            raise VendorNotFound(f"{self.blobs.url}: {market} {session} is not delivered")
        return delivery.decode

    def list_sessions(self, market: str) -> list[dt.date]:
        self._check_market(market)
        return self.layout.sessions(self.blobs, self.market)

    def check_connectivity(self) -> None:
        self.blobs.check()


# --- one file per session at a path pattern (flat files, mapped deliveries) ------------------------------


def render_path(pattern: str, market: Market, session: dt.date) -> str:
    """``{session}`` (a date: ``{session:%Y/%m}`` works), ``{market}`` -> the session's relative path."""
    return pattern.format(session=session, market=market.market_id)


def check_pattern(pattern, where: str) -> str:
    """A path pattern names the session (else every session would read the same file) and renders."""
    if not isinstance(pattern, str) or "{session" not in pattern:
        raise ValueError(
            f"{where}: path pattern {pattern!r} must contain {{session}} (e.g. '{{session}}.csv.gz')"
        )
    try:
        pattern.format(session=dt.date(2026, 3, 9), market="XNYS")
    except (KeyError, ValueError, IndexError) as exc:
        raise ValueError(
            f"{where}: path pattern {pattern!r} does not render ({type(exc).__name__}: {exc})"
        ) from None
    return pattern


class PatternLayout:
    """The session's bars are one file at the pattern's path; ``decode(name, data, market, window)``."""

    def __init__(self, pattern: str, decode, condition: str = "available"):
        self.pattern, self._decode, self.condition = pattern, decode, condition

    def locate(self, blobs, market, session, window):
        path = render_path(self.pattern, market, session)
        name = path.rsplit("/", 1)[-1]
        return SessionDelivery(
            (VendorFile(name, path),), self.condition, lambda n, data: self._decode(n, data, market, window)
        )

    def sessions(self, blobs, market) -> list[dt.date]:
        """Sessions since the market's first whose file exists (probes each: meant for tools, not sensors)."""
        cal = calendar_for(market.market_id, market.calendar)
        found = []
        for session in cal.sessions(market.first_session, dt.datetime.now(dt.timezone.utc).date()):
            try:
                blobs.get(render_path(self.pattern, market, session))
                found.append(session)
            except VendorNotFound:
                continue
        return found
