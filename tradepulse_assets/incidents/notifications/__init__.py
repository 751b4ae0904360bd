"""Incident notifications: a durable outbox in the state DB, a delivery worker, one module per channel.

| module | holds |
| --- | --- |
| ``transport`` | one attempt's outcome, the channel protocol, redaction, one POST through ``core/http`` |
| ``outbox`` | the ``notification_outbox`` table (enqueue, due, claim, retry schedule, resend) and the JSONL file |
| ``delivery`` | ``Notifications``: ``post`` (enqueue, no network) and ``deliver_due`` (the worker) |
| ``config`` | channels from the environment; drill mode from the state DB |
| ``slack``, ``pagerduty``, ``email``, ``statuspage``, ``confluence`` | one channel each, over its real protocol |

See ``docs/notifications.md`` for the delivery guarantees and the configuration.
"""

from tradepulse_assets.incidents.notifications.config import ChannelConfig, channels_from_env, config_for
from tradepulse_assets.incidents.notifications.delivery import (
    DeliveryReport,
    Notifications,
    notifications_for,
)
from tradepulse_assets.incidents.notifications.outbox import Outbox, OutboxEntry
from tradepulse_assets.incidents.notifications.transport import Attempt, NotifierConfigError, Redactor

__all__ = [
    "Attempt",
    "ChannelConfig",
    "DeliveryReport",
    "Notifications",
    "NotifierConfigError",
    "Outbox",
    "OutboxEntry",
    "Redactor",
    "channels_from_env",
    "config_for",
    "notifications_for",
]
