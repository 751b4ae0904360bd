"""Markets: the registry of venues we ingest, their trading calendars and session partitions.

This layer imports nothing else of ours; every other layer asks it what a trading minute is.
"""

from tradepulse_assets.markets.bars import BAR_COLUMNS
from tradepulse_assets.markets.calendars import MarketCalendar, SessionHours, calendar_for
from tradepulse_assets.markets.registry import IngestionMode, Market, MarketRegistry, load_registry

__all__ = [
    "BAR_COLUMNS",
    "BarSchema",
    "IngestionMode",
    "Market",
    "MarketCalendar",
    "MarketRegistry",
    "SessionHours",
    "calendar_for",
    "load_registry",
]


def __getattr__(name: str):
    if name == "BarSchema":  # built on first use (pandera imports pandas): see markets.bars
        from tradepulse_assets.markets import bars

        return bars.BarSchema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
