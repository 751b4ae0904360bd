"""The market registry: which venues we ingest, how, and how late they may be.

Read from a TOML file in the repo (``tradepulse_assets/config/markets.toml``) or from the path in
``$TRADEPULSE_MARKETS_FILE``, so an operator changes venues without touching code.
"""

import datetime as dt
import enum
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

MARKETS_FILE_ENV = "TRADEPULSE_MARKETS_FILE"


#: What happens to a delivered symbol outside the market's universe (``unknown_symbols`` in the registry):
#: ``block`` stops the session at the universe gate; ``promote_with_warning`` promotes it, warns and records a
#: universe change in the audit trail. Never silent (docs/quality-gates.md).
UNKNOWN_SYMBOL_POLICIES = ("block", "promote_with_warning")


class IngestionMode(str, enum.Enum):
    STREAMING = "streaming"
    BATCH = "batch"


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
class MarketRegistry:
    source: str
    markets: tuple[Market, ...]

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


def parse_registry(text: str, source: str) -> MarketRegistry:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: not valid TOML: {exc}") from None
    tables = doc.get("markets")
    if not isinstance(tables, dict) or not tables:
        raise RegistryError(f"{source}: no [markets.<ID>] tables")
    return MarketRegistry(
        source=source,
        markets=tuple(_parse_market(source, mid, raw) for mid, raw in tables.items()),
    )


def load_registry(path: str | os.PathLike | None = None) -> MarketRegistry:
    """Load the registry from ``path``, ``$TRADEPULSE_MARKETS_FILE`` or the packaged default."""
    path = path or os.environ.get(MARKETS_FILE_ENV)
    if path:
        return parse_registry(Path(path).read_text(), str(path))
    packaged = resources.files("tradepulse_assets.config").joinpath("markets.toml")
    return parse_registry(packaged.read_text(), "tradepulse_assets/config/markets.toml")
