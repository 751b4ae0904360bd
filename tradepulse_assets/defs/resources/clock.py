"""The platform clock: real time by default, simulated for replays (``TRADEPULSE_CLOCK``)."""

import dagster as dg

from tradepulse_assets.core.clock import Clock, parse_clock


class ClockResource(dg.ConfigurableResource):
    """``spec`` is ``system`` or ``simulated:<iso start>:<speed>`` (see ``vendor/clock.py``)."""

    spec: str = "system"

    def clock(self) -> Clock:
        return parse_clock(self.spec)
