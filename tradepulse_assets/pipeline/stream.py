"""The streaming ingestor's poll: land the minute micro-batches a vendor published since the last poll.

It keeps the original bytes under ``landing/stream/``, advances the market's durable watermark (the last bar
landed; never backwards, safe with several pollers) and writes one audit line per micro-batch. The lag
sensor reads the watermark; the session partition itself is built by the Dagster assets from the vendor's
session drop.
"""

import datetime as dt

from tradepulse_assets.markets import Market, calendar_for
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import ObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets.feeds.connectors import Connector
from tradepulse_assets.feeds.manifest import parse_bar_file, sha256_hex, verify_file

STREAM_PREFIX = "landing/stream"


def stream_watermark_name(market_id: str) -> str:
    return f"stream:{market_id}"


def streaming_session(market: Market, now: dt.datetime) -> dt.date | None:
    """The session being streamed at ``now``: the one trading now, else the latest that has opened."""
    calendar = calendar_for(market.market_id, market.calendar)
    current = calendar.session_of(now - dt.timedelta(minutes=1))
    if current is not None:
        return current
    opened = [s for s in calendar.sessions(now.date() - dt.timedelta(days=10), now.date()) if calendar.hours(s).open <= now]
    return opened[-1] if opened else None


def poll_stream(
    market: Market, connector: Connector, store: ObjectStore, db: StateDB, audit: AuditLog, now: dt.datetime
) -> int:
    """Land the micro-batches published since the last poll; returns how many were landed."""
    session = streaming_session(market, now)
    if session is None:
        return 0
    manifest = connector.read_manifest(market.market_id, session)
    if manifest is None:
        return 0
    prefix = f"{STREAM_PREFIX}/market={market.market_id}/session={session}"
    have = set(k.rsplit("/", 1)[-1] for k in store.list_keys(prefix))
    landed, watermark = 0, db.get_watermark(stream_watermark_name(market.market_id))
    for entry in manifest.files:
        if entry.name in have:
            continue
        data = connector.read_file(market.market_id, session, entry.name)
        faults = verify_file(entry, data)
        store.put_bytes(f"{prefix}/{entry.name}", data)
        rows = 0
        if not faults:
            bars = parse_bar_file(entry.name, data)
            rows = bars.height
            if rows:
                last = bars.get_column("ts").max()
                if watermark is None or last.isoformat() > watermark:
                    watermark = last.isoformat()
        audit.append({"event": "stream", "market": market.market_id, "session": str(session),
                      "batch": entry.name, "rows": rows, "sha256": entry.sha256,
                      "outcome": "ok" if not faults else "fault:" + ",".join(f.check for f in faults)})
        landed += 1
    if watermark:
        db.advance_watermark(stream_watermark_name(market.market_id), watermark, now=now)
    return landed


def landed_watermark(store: ObjectStore, market_id: str) -> str | None:
    """The last bar actually landed by the stream (from the newest session's micro-batches), or None."""
    keys = store.list_keys(f"{STREAM_PREFIX}/market={market_id}/")
    sessions = sorted({k.split("/session=")[1].split("/")[0] for k in keys})
    if not sessions:
        return None
    newest = [k for k in keys if f"/session={sessions[-1]}/" in k]
    latest = [parse_bar_file(k, store.get_bytes(k)).get_column("ts").max() for k in newest]
    latest = [t for t in latest if t is not None]
    return max(latest).isoformat() if latest else None


class LandedStreamConnector:
    """A streaming market's session as the ingestor landed it.

    The session partition is built from the micro-batches the ingestor already holds, reconciled against
    the vendor's manifest (totals, checksums); a micro-batch the ingestor missed, or holds with other bytes
    than the manifest promises, is fetched from the vendor.
    """

    def __init__(self, store: ObjectStore, vendor: Connector):
        self.store, self.vendor = store, vendor
        self._manifests: dict[tuple[str, dt.date], object] = {}

    def list_sessions(self, market: str) -> list[dt.date]:
        return self.vendor.list_sessions(market)

    def read_manifest(self, market: str, session: dt.date):
        manifest = self.vendor.read_manifest(market, session)
        self._manifests[(market, session)] = manifest
        return manifest

    def read_file(self, market: str, session: dt.date, name: str) -> bytes:
        key = f"{STREAM_PREFIX}/market={market}/session={session}/{name}"
        manifest = self._manifests.get((market, session)) or self.read_manifest(market, session)
        if manifest is not None and self.store.exists(key):
            data = self.store.get_bytes(key)
            if sha256_hex(data) == manifest.file(name).sha256:
                return data
        return self.vendor.read_file(market, session, name)

    def check_connectivity(self) -> None:
        self.vendor.check_connectivity()
