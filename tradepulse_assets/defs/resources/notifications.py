"""Notifications: the durable outbox of the state DB and the channels configured in the environment.

Endpoints and secrets are read from the environment when notifications are built, never stored in run config,
so they do not show up in the Dagster UI.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg

from tradepulse_assets.incidents.notifications import Notifications, notifications_for
from tradepulse_assets.storage.state import StateDB


class NotificationsResource(dg.ConfigurableResource):
    outbox_path: str

    def notifications(self, db: StateDB, clock: Callable[[], dt.datetime]) -> Notifications:
        return notifications_for(db, self.outbox_path, clock=clock)
