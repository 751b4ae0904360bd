"""The periodic incident review on a schedule: every Monday the last 90 days' incidents, stage times and open
follow-ups are written to ``reports/incidents/reviews/<date>.md`` (the same text as ``incident review``)."""

import datetime as dt

import dagster as dg

from tradepulse_assets.defs.jobs import scheduled_op
from tradepulse_assets.defs.resources import ClockResource, ObjectStoreResource, StateResource
from tradepulse_assets.incidents.followups import FollowupActions
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.review import review_path, review_report
from tradepulse_assets.storage.object_store import runbook_store

REVIEW_DAYS = 90


@dg.op(description="Write the periodic incident review (incidents, stage times, open follow-ups).")
def write_incident_review(
    context: dg.OpExecutionContext, state: StateResource, object_store: ObjectStoreResource, clock: ClockResource
) -> str:
    now = clock.clock().now()
    engine = IncidentEngine(state.db(), artefacts=runbook_store(object_store.store()))
    followups = FollowupActions(engine.db).items()
    text = review_report(
        engine.store.list(), followups, since=now - dt.timedelta(days=REVIEW_DAYS), until=now
    )
    path = review_path(now)
    engine.artefacts.put_bytes(path, text.encode(), content_type="text/markdown")
    overdue = sum(1 for f in followups if f.overdue(now))
    context.add_output_metadata({"path": path, "overdue_followups": overdue})
    return path


incident_review_job, incident_review_schedule = scheduled_op(
    write_incident_review,
    job_name="incident_review_job",
    job_description="The periodic incident review (runbook: review after each incident and quarterly).",
    schedule_name="incident_review_weekly",
    cron_schedule="0 7 * * 1",
    schedule_description="Mondays 07:00 UTC: incidents of the last 90 days, stage times and open follow-ups "
    "(overdue flagged).",
)
