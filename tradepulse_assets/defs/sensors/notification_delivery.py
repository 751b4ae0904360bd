"""Delivering notifications outside sensor ticks: a sensor that only counts, a job that sends.

Why a job: a tick has a 60 s budget and must never wait on the network (one endpoint that never answers would
otherwise stall every sensor of the daemon). The sensor asks the outbox one question, "is anything due?", and
launches ``deliver_notifications`` when no delivery run is already in flight; the run makes one bounded attempt
per due message and leaves the rest, with its backoff, for the next run.
"""

import dagster as dg

from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, StateResource
from tradepulse_assets.incidents.notifications import Outbox
from tradepulse_assets.incidents.notifications.delivery import note_on_timeline
from tradepulse_assets.incidents.store import IncidentStore

DELIVERY_JOB = "deliver_notifications"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.op(description="One pass of the notification delivery worker over the durable outbox.")
def deliver_due_notifications(
    context: dg.OpExecutionContext,
    state: StateResource,
    notifications: NotificationsResource,
    clock: ClockResource,
) -> int:
    now, db = clock.clock().now, state.db()
    report = notifications.notifications(db, now).deliver_due(
        on_give_up=note_on_timeline(IncidentStore(db), now)
    )
    context.log.info(f"notification delivery: {report.summary()}")
    return len(report.delivered)


@dg.job(
    name=DELIVERY_JOB, description="Send due notifications from the outbox (launched by the delivery sensor)."
)
def deliver_notifications_job():
    deliver_due_notifications()


def build_notification_delivery_sensor(min_interval: int | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name="notification_delivery_sensor",
        job=deliver_notifications_job,
        minimum_interval_seconds=min_interval or 15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Launches a delivery run when outbox messages are due; the tick itself never touches the network."
        ),
    )
    def notification_delivery_sensor(
        context: dg.SensorEvaluationContext, state: StateResource, clock: ClockResource
    ):
        due = Outbox(state.db()).due_count(clock.clock().now())
        if not due:
            return dg.SkipReason("no notification due")
        in_flight = context.instance.get_runs(
            filters=dg.RunsFilter(job_name=DELIVERY_JOB, statuses=IN_FLIGHT), limit=1
        )
        if in_flight:
            return dg.SkipReason(f"{due} notification(s) due; delivery run {in_flight[0].run_id} is in flight")
        return dg.RunRequest(tags={"tradepulse/notifications-due": str(due)})

    return notification_delivery_sensor


notification_delivery_sensor = build_notification_delivery_sensor()  # the default cadence (replays, tests)
