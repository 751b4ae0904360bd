"""What every incident sensor needs: a Responder built from the resources, and partition status lookups."""

import datetime as dt

import dagster as dg

from tradepulse_assets.defs.partitions import session_of_key
from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, ObjectStoreResource, StateResource
from tradepulse_assets.pipeline.response import Responder


def build_responder(
    object_store: ObjectStoreResource, state: StateResource, notifications: NotificationsResource, clock: ClockResource
) -> Responder:
    now = clock.clock().now
    return Responder(state.db(), object_store.store(), notifications.dispatcher, now)


def materialized_sessions(instance: dg.DagsterInstance, key: dg.AssetKey) -> set[dt.date]:
    return {session_of_key(k) for k in instance.get_materialized_partitions(key)}
