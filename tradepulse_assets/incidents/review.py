"""The periodic incident review (runbook: "review after each data incident and quarterly"): one report of the
incidents of a period, how long each stage took, and the follow-ups still open (overdue ones flagged).

Pure rendering over plain values, so the CLI (``incident review``) and the weekly schedule write the same text.
"""

import datetime as dt
import statistics
from collections.abc import Sequence

from tradepulse_assets.incidents.followups import ActionItem
from tradepulse_assets.incidents.model import Incident

STAGE_STAMPS = (
    ("contain", "contained_at"),
    ("recover", "recovering_at"),
    ("validate", "validating_at"),
    ("resolve", "resolved_at"),
)


def stage_minutes(incident: Incident) -> dict[str, float | None]:
    """Minutes from opening to each stage (``None`` when the incident has not reached it)."""
    out: dict[str, float | None] = {}
    for name, attr in STAGE_STAMPS:
        at = getattr(incident, attr)
        out[name] = None if at is None else round((at - incident.opened_at).total_seconds() / 60, 1)
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def review_report(
    incidents: Sequence[Incident],
    followups: Sequence[ActionItem],
    *,
    since: dt.datetime,
    until: dt.datetime,
) -> str:
    """Markdown: incidents opened in ``[since, until)``, stage times (with medians), open follow-ups."""
    period = [i for i in incidents if since <= i.opened_at < until]
    lines = [
        f"# Incident review {since.date()} to {until.date()}",
        "",
        f"{len(period)} incident(s) opened; {sum(1 for i in period if i.state.value == 'resolved')} resolved.",
        "",
        "## Incidents and stage times (minutes from opening)",
        "",
        "| incident | cause | markets | state | opened | contain | recover | validate | resolve |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    times = {i.id: stage_minutes(i) for i in period}
    for incident in sorted(period, key=lambda i: i.opened_at):
        t = times[incident.id]
        markets = ", ".join(incident.scope.markets or (incident.market,))
        lines.append(
            f"| {incident.id} | {incident.cause} | {markets} | {incident.state.value} |"
            f" {incident.opened_at:%Y-%m-%d %H:%M} | "
            + " | ".join(_fmt(t[name]) for name, _ in STAGE_STAMPS)
            + " |"
        )
    medians = []
    for name, _ in STAGE_STAMPS:
        values = [t[name] for t in times.values() if t[name] is not None]
        medians.append(_fmt(statistics.median(values)) if values else "-")
    lines += [f"| median | | | | | {' | '.join(medians)} |", "", "## Open follow-ups", ""]
    still_open = [f for f in followups if f.status in ("open", "scheduled", "failed")]
    if not still_open:
        lines.append("None.")
    else:
        lines += ["| incident | follow-up | owner | due | status |", "| --- | --- | --- | --- | --- |"]
        for item in sorted(still_open, key=lambda f: f.due_at):
            flag = " **OVERDUE**" if item.overdue(until) else ""
            lines.append(
                f"| {item.incident_id} | {item.title} | {item.owner} | {item.due_at:%Y-%m-%d}{flag} |"
                f" {item.status} |"
            )
    return "\n".join(lines) + "\n"


def review_path(until: dt.datetime) -> str:
    """Where a review is written under the home: ``reports/incidents/reviews/<until date>.md``."""
    return f"reports/incidents/reviews/{until.date().isoformat()}.md"
