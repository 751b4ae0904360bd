"""The incident dashboard a person reads in the Dagster UI: every open incident's stage, its exit criteria
with their evidence, its artefacts, and a small plot of the affected markets' lag."""

import datetime as dt
from collections.abc import Mapping, Sequence

from tradepulse_assets.incidents.model import Incident
from tradepulse_assets.incidents.reports import incident_dir, render_exit_criteria
from tradepulse_assets.storage.state import StateDB

SPARK_BARS = "▁▂▃▄▅▆▇█"
LAG_PLOT_WINDOW = dt.timedelta(hours=2)


def sparkline(values: Sequence[float]) -> str:
    """A one-line plot a person reads at a glance (NaN shows as a gap)."""
    finite = [v for v in values if v == v]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return "".join(SPARK_BARS[int((v - lo) / span * (len(SPARK_BARS) - 1))] if v == v else " " for v in values)


def render_incident(incident: Incident, lag: Mapping[str, Sequence[float]]) -> list[str]:
    markets = incident.scope.markets or (incident.market,)
    lines = [
        f"### {incident.id}: {incident.cause} on {', '.join(markets)} ({incident.state.value})",
        "",
        f"Opened {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC. {incident.description}",
        "",
        f"Artefacts: `{incident_dir(incident)}/timeline.md`, `gap.csv`; backfills: `reports/backfill/{incident.id}/`",
        "",
    ]
    for market in markets:
        series = lag.get(market, ())
        if series:
            lines += ["", f"Lag {market} (last {len(series)} samples, max {max(series):.0f}s): `{sparkline(series)}`"]
    return [*lines, "", *render_exit_criteria(incident.last_evaluation), ""]


def render_dashboard(incidents: Sequence[Incident], db: StateDB, now: dt.datetime) -> str:
    if not incidents:
        return "No open incident."
    lag = {}
    for market in sorted({m for i in incidents for m in (i.scope.markets or (i.market,))}):
        rows = db.lag_history(market, now - LAG_PLOT_WINDOW, until=now)
        lag[market] = [float(r["lag_seconds"]) for r in rows]
    return "\n".join(line for incident in incidents for line in render_incident(incident, lag))
