"""The simulated vendor of ``make run``, publishing forever: streaming micro-batches as the clock passes,
batch sessions after their close. ``cli/seed.py`` publishes the history once; this keeps the drop current.
"""

import datetime as dt
import os
import time
from pathlib import Path

from tradepulse_assets.cli.seed import SEED
from tradepulse_assets.core.clock import parse_clock
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.pipeline.lag import closed_sessions


def publish_due_forever(env: dict[str, str], interval: float = 15.0) -> None:
    """The simulated vendor keeps publishing: streaming micro-batches as the clock passes, batch sessions
    after their close."""
    vendor_root = env.get("TRADEPULSE_VENDOR_SOURCE") or str(Path(env["TRADEPULSE_HOME"]) / "vendor")
    clock = parse_clock(env.get("TRADEPULSE_CLOCK", "system"))
    registry = load_registry()
    publisher = Publisher(drop_store(vendor_root), seed=SEED, registry=registry)
    while True:
        now = clock.now()
        for market in registry:
            calendar = calendar_for(market.market_id, market.calendar)
            current = calendar.session_of(now)
            if market.is_streaming and current is not None:
                publisher.publish_due(market.market_id, current, now)
            for session in closed_sessions(market, now, 1):
                if session >= now.date() - dt.timedelta(days=1):
                    publisher.publish_session(market.market_id, session, by_minute=market.is_streaming)
        time.sleep(interval)


if __name__ == "__main__":
    publish_due_forever(dict(os.environ))
