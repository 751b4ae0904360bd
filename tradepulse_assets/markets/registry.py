"""The market registry: which venues we ingest, how, how late they may be, and in which vendor format.

A market names its vendor (``vendor = "..."``). ``simulator`` (and ``user``) deliver our own drop format
(docs/vendor-format.md); any other name must be a ``[vendors.<name>]`` table saying which format the vendor
delivers (``databento``, ``flat_minute_aggs``, ``mapped``) and, optionally, where (``source``). The
format-specific options are validated by ``tradepulse_assets.feeds.sources`` at start-up (this layer only
checks the structure), so a typo fails the code location before the first run, naming the file and field.

Read from a TOML file in the repo (``tradepulse_assets/config/markets.toml``) or from the path in
``$TRADEPULSE_MARKETS_FILE``, so an operator changes venues without touching code.
"""

import datetime as dt
import enum
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tradepulse_assets.core.environment import read

MARKETS_FILE_ENV = "TRADEPULSE_MARKETS_FILE"


#: What happens to a delivered symbol outside the market's universe (``unknown_symbols`` in the registry):
#: ``block`` stops the session at the universe gate; ``promote_with_warning`` promotes it, warns and records a
#: universe change in the audit trail. Never silent (docs/quality-gates.md).
UNKNOWN_SYMBOL_POLICIES = ("block", "promote_with_warning")


class IngestionMode(str, enum.Enum):
    STREAMING = "streaming"
    BATCH = "batch"


DROP_FORMAT = "drop"
VENDOR_FORMATS = (DROP_FORMAT, "databento", "flat_minute_aggs", "mapped")
BUILTIN_VENDORS = ("simulator", "user")  # vendors that deliver our own drop format


class RegistryError(ValueError):
    """The market registry file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Market:
    market_id: str
    calendar: str
    description: str
    ingestion_mode: IngestionMode
    lag_sla_seconds: int
    universe_size: int
    symbol_prefix: str
    vendor: str
    first_session: dt.date
    unknown_symbols: str = "block"

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbol universe: ``<prefix><nnn>``, sized by ``universe_size``."""
        return tuple(f"{self.symbol_prefix}{i:03d}" for i in range(self.universe_size))

    @property
    def is_streaming(self) -> bool:
        return self.ingestion_mode is IngestionMode.STREAMING


@dataclass(frozen=True)
class VendorSpec:
    """A vendor as the registry declares it: its delivery format, optional location and format options."""

    name: str
    format: str
    source: str | None = None  # None: the platform's vendor source, under <market>/
    options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_drop_format(self) -> bool:
        return self.format == DROP_FORMAT


def builtin_vendor(name: str) -> VendorSpec:
    return VendorSpec(name, DROP_FORMAT)


@dataclass(frozen=True)
class MarketRegistry:
    source: str
    markets: tuple[Market, ...]
    vendors: tuple[VendorSpec, ...] = ()

    def __iter__(self):
        return iter(self.markets)

    def __len__(self) -> int:
        return len(self.markets)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(m.market_id for m in self.markets)

    def get(self, market_id: str) -> Market:
        for market in self.markets:
            if market.market_id == market_id:
                return market
        raise KeyError(f"unknown market {market_id!r}; known: {', '.join(self.ids)} (registry {self.source})")

    def vendor_of(self, market_id: str) -> VendorSpec:
        """The vendor spec of a market (the drop format for the built-in vendors)."""
        name = self.get(market_id).vendor
        return next((v for v in self.vendors if v.name == name), None) or builtin_vendor(name)


_REQUIRED = ("calendar", "ingestion_mode", "lag_sla_seconds", "universe_size", "symbol_prefix")


def _parse_market(source: str, market_id: str, raw: dict) -> Market:
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise RegistryError(f"{source}: market {market_id} lacks {', '.join(missing)}")
    if not market_id.isalnum() or not market_id.isupper():
        raise RegistryError(f"{source}: market id {market_id!r} must be upper-case letters and digits")
    try:
        mode = IngestionMode(raw["ingestion_mode"])
    except ValueError:
        raise RegistryError(
            f"{source}: market {market_id} ingestion_mode {raw['ingestion_mode']!r} is not streaming or batch"
        ) from None
    sla = int(raw["lag_sla_seconds"])
    size = int(raw["universe_size"])
    if sla <= 0 or size <= 0:
        raise RegistryError(f"{source}: market {market_id} needs positive lag_sla_seconds and universe_size")
    first = raw.get("first_session", "2026-01-01")
    policy = str(raw.get("unknown_symbols", "block"))
    if policy not in UNKNOWN_SYMBOL_POLICIES:
        raise RegistryError(
            f"{source}: market {market_id} unknown_symbols {policy!r} is not one of "
            + ", ".join(UNKNOWN_SYMBOL_POLICIES)
        )
    return Market(
        market_id=market_id,
        calendar=str(raw["calendar"]),
        description=str(raw.get("description", "")),
        ingestion_mode=mode,
        lag_sla_seconds=sla,
        universe_size=size,
        symbol_prefix=str(raw["symbol_prefix"]),
        vendor=str(raw.get("vendor", "simulator")),
        first_session=first if isinstance(first, dt.date) else dt.date.fromisoformat(str(first)),
        unknown_symbols=policy,
    )


def _parse_vendor(source: str, name: str, raw) -> VendorSpec:
    where = f"{source}: [vendors.{name}]"
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    if name in BUILTIN_VENDORS:
        raise RegistryError(f"{where}: {name!r} is a built-in vendor (our drop format); choose another name")
    fmt = raw.get("format")
    if fmt not in VENDOR_FORMATS:
        raise RegistryError(f"{where}: format {fmt!r} is not one of {', '.join(VENDOR_FORMATS)}")
    location = raw.get("source")
    if location is not None and (not isinstance(location, str) or not location.strip()):
        raise RegistryError(f"{where}: source must be a directory, s3://bucket/prefix or https:// URL")
    options = {k: v for k, v in raw.items() if k not in ("format", "source")}
    return VendorSpec(name=name, format=fmt, source=location, options=options)


def _check_vendor_use(source: str, markets: tuple[Market, ...], vendors: tuple[VendorSpec, ...]) -> None:
    declared = {v.name: v for v in vendors}
    for market in markets:
        spec = declared.get(market.vendor)
        if spec is None and market.vendor not in BUILTIN_VENDORS:
            raise RegistryError(
                f"{source}: market {market.market_id} names vendor {market.vendor!r}, which is neither "
                f"built in "
                f"({', '.join(BUILTIN_VENDORS)}) nor declared as [vendors.{market.vendor}]"
            )
        if spec is not None and not spec.is_drop_format and market.is_streaming:
            raise RegistryError(
                f"{source}: market {market.market_id} streams, but vendor {spec.name!r} delivers "
                f"{spec.format} "
                "files per day; only the drop format carries minute micro-batches"
            )


def parse_registry(text: str, source: str) -> MarketRegistry:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: not valid TOML: {exc}") from None
    tables = doc.get("markets")
    if not isinstance(tables, dict) or not tables:
        raise RegistryError(f"{source}: no [markets.<ID>] tables")
    raw_vendors = doc.get("vendors", {})
    if not isinstance(raw_vendors, dict):
        raise RegistryError(f"{source}: 'vendors' must hold [vendors.<name>] tables")
    markets = tuple(_parse_market(source, mid, raw) for mid, raw in tables.items())
    vendors = tuple(_parse_vendor(source, name, raw) for name, raw in raw_vendors.items())
    _check_vendor_use(source, markets, vendors)
    return MarketRegistry(source=source, markets=markets, vendors=vendors)


def load_registry(path: str | os.PathLike | None = None) -> MarketRegistry:
    """Load the registry from ``path``, ``$TRADEPULSE_MARKETS_FILE`` or the packaged default."""
    path = path or read(MARKETS_FILE_ENV)
    if path:
        return parse_registry(Path(path).read_text(), str(path))
    packaged = resources.files("tradepulse_assets.config").joinpath("markets.toml")
    return parse_registry(packaged.read_text(), "tradepulse_assets/config/markets.toml")
