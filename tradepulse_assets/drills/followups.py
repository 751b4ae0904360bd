"""Preventive follow-up (runbook 6.3): every resolved incident gets a chaos replay of its fault within
30 days. A daily schedule runs the replays that are due, in a sandbox, and records on the incident how
fast the platform detected and recovered this time."""

import dagster as dg

from tradepulse_assets.defs.jobs import scheduled_op
from tradepulse_assets.defs.resources import ClockResource, StateResource
from tradepulse_assets.drills.chaos import followup_scenario, replay_scenario
from tradepulse_assets.incidents.store import IncidentStore


def _summary(times) -> str:
    def fmt(stage):
        seconds = times.seconds(stage)
        return "-" if seconds is None else f"{seconds / 60:.1f} min"

    return (
        f"{times.kind} on {times.market} {times.session}: {times.outcome}; detect {fmt('detected')}, "
        f"contain {fmt('contained')}, backfill {fmt('backfilled')}, validate {fmt('validated')}"
    )


@dg.op(description="Run every due chaos-replay follow-up in a sandbox and record its stage times.")
def run_due_followups(context: dg.OpExecutionContext, state: StateResource, clock: ClockResource) -> int:
    now = clock.clock().now()
    incidents = IncidentStore(state.db())
    due = incidents.due_followups(now)
    for followup in due:
        results = replay_scenario(followup_scenario(followup.scenario, now))
        ok = all(r.outcome == "resolved" for r in results)
        note = "; ".join(_summary(r) for r in results)
        incidents.complete_followup(followup.id, now=now, status="done" if ok else "failed", note=note)
        context.log.info(f"follow-up {followup.scenario} of {followup.incident_id}: {note}")
    return len(due)


chaos_followups_job, chaos_followups_schedule = scheduled_op(
    run_due_followups,
    job_name="chaos_followups_job",
    job_description="Chaos replays that resolved incidents scheduled (runbook 6.3).",
    schedule_name="chaos_followups_daily",
    cron_schedule="0 6 * * *",
    schedule_description="Daily at 06:00 UTC: run the chaos replays whose follow-up is due (scheduled at "
    "resolution, due within 30 days).",
)
