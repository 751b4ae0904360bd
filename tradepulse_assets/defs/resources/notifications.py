"""Notifications: the runbook's five stages through the outbox, Slack webhooks and PagerDuty.

Endpoints and secrets are read from the environment when a dispatcher is built, never stored in
run config, so they do not show up in the Dagster UI.
"""

import os

import dagster as dg

from tradepulse_assets.incidents.notifiers import Dispatcher, FailureHandler, dispatcher_from_env


class NotificationsResource(dg.ConfigurableResource):
    outbox_path: str

    def dispatcher(self, on_failure: FailureHandler | None = None) -> Dispatcher:
        extra = {"on_failure": on_failure} if on_failure is not None else {}
        return dispatcher_from_env(dict(os.environ), self.outbox_path, **extra)
