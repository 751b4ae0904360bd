"""The state database (incidents, control-plane toggles, lag samples, watermarks, outbox)."""

import dagster as dg

from tradepulse_assets.storage.state import StateDB


class StateResource(dg.ConfigurableResource):
    """``url``: ``sqlite:///path/state.db`` (embedded, WAL) or ``postgresql://...`` (production)."""

    url: str

    def db(self) -> StateDB:
        return StateDB(self.url)
