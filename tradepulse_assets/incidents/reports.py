"""Incident artefacts at the runbook's paths: ``timeline.md``, ``gap.csv``, ``postmortem.md`` and the
per-partition backfill reports.

Why rendering and writing are split: the renderers are pure (incident data in, text out), so tests
assert the exact content and the CLI can show the same text; each artefact is put atomically
(temporary file + rename locally, one PUT on S3), so a reader never sees half a timeline, and
regenerating an artefact simply replaces it. ``incident_artefacts`` gives an incident's artefacts as
objects for ``ObjectStore.put_many``, so the engine writes those of many incidents with one group commit.

Keys are the runbook's paths relative to ``$TRADEPULSE_HOME`` (``storage.home``):
``reports/incidents/data/<YYYY-MM-DD>-<id>/{timeline.md,gap.csv,postmortem.md}`` and
``reports/backfill/<incident_id>/{<market>-<session>.json,summary.csv}``.
"""

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tradepulse_assets.incidents.exit_criteria import ExitEvaluation
from tradepulse_assets.incidents.model import BackfillRecord, GapWindow, Incident, IncidentEvent
from tradepulse_assets.storage.home import backfill_report_dir, incident_report_dir
from tradepulse_assets.storage.object_store import ObjectStore, Put

GAP_COLUMNS = ("market", "start", "end", "missing_minutes", "status")
BACKFILL_SUMMARY_COLUMNS = ("market", "session", "rows", "vendor_rows", "checksums_ok", "verdict", "run_id",
                            "recorded_at")


def fmt_ts(ts: dt.datetime | None) -> str:
    """``2026-03-09T14:30:00Z`` (seconds precision, UTC) for artefacts people read and diff."""
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "-"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(abs(seconds), 3600)
    m, s = divmod(rem, 60)
    return ("-" if seconds < 0 else "") + (f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s")


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _scope_lines(incident: Incident) -> list[str]:
    scope = incident.scope
    lines = [f"- **Markets:** {', '.join(scope.markets) or '-'}",
             f"- **Symbols:** {', '.join(scope.symbols) or 'all'}"]
    if scope.sessions:
        lines.append(f"- **Sessions:** {', '.join(scope.sessions)}")
    if scope.windows:
        lines.append("- **Time ranges:** " + ", ".join(f"{fmt_ts(w.start)} to {fmt_ts(w.end)}" for w in scope.windows))
    return lines


def render_exit_criteria(evaluation: ExitEvaluation | Mapping[str, Any] | None) -> list[str]:
    if evaluation is None:
        return ["_Not evaluated yet._"]
    if not isinstance(evaluation, ExitEvaluation):
        evaluation = ExitEvaluation.from_dict(evaluation)
    lines = [
        f"Evaluated {fmt_ts(evaluation.evaluated_at)}: automatic criteria "
        f"{'met' if evaluation.automatic_met else 'NOT met'}, all criteria {'met' if evaluation.all_met else 'NOT met'}.",
        "",
        "| Criterion | Kind | Status | Evidence |",
        "| --- | --- | --- | --- |",
    ]
    for c in evaluation.criteria:
        kind = "automatic" if c.automatic else "manual"
        lines.append(f"| {c.name} | {kind} | {c.status} | {_md_cell(c.summary)} |")
    return lines


def render_timeline(
    incident: Incident,
    events: Sequence[IncidentEvent],
    evaluation: ExitEvaluation | Mapping[str, Any] | None = None,
) -> str:
    """``timeline.md``: header (id, cause, state, scope, owners), the event table, exit criteria."""
    lines = [
        f"# Incident {incident.id}",
        "",
        f"- **Cause:** {incident.cause}",
        f"- **State:** {incident.state.value}",
        f"- **Opened:** {fmt_ts(incident.opened_at)}",
        *_scope_lines(incident),
        f"- **Owners:** {', '.join(incident.owners) or 'unassigned'}",
        f"- **Vendor references:** {', '.join(incident.vendor_refs) or '-'}",
        f"- **Detections:** {incident.detections}",
    ]
    if incident.description:
        lines += ["", incident.description]
    lines += ["", "## Timeline", "", "| Time (UTC) | Event | Message |", "| --- | --- | --- |"]
    lines += [f"| {fmt_ts(e.at)} | {e.kind} | {_md_cell(e.message)} |" for e in events]
    lines += ["", "## Exit criteria", "", *render_exit_criteria(evaluation or incident.last_evaluation), ""]
    return "\n".join(lines)


def render_gap_csv(gaps: Sequence[GapWindow]) -> str:
    """``gap.csv``: ``market,start,end,missing_minutes,status``, one row per gap window, sorted."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(GAP_COLUMNS)
    for g in sorted(gaps, key=lambda g: (g.market, g.start)):
        writer.writerow([g.market, fmt_ts(g.start), fmt_ts(g.end), g.missing_minutes, g.status])
    return buf.getvalue()


def _seconds(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
    return (b - a).total_seconds() if a and b else None


def first_evidence(events: Sequence[IncidentEvent]) -> dt.datetime | None:
    """The earliest ``evidence_at`` the detections recorded: when the platform could first see the fault
    (the lag crossing its SLA, the landing that found the corruption)."""
    stamps = []
    for event in events:
        raw = (event.data or {}).get("evidence_at")
        if raw:
            stamp = dt.datetime.fromisoformat(raw)
            stamps.append(stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc))
    return min(stamps) if stamps else None


def incident_durations(incident: Incident, gaps: Sequence[GapWindow] = (),
                       events: Sequence[IncidentEvent] = ()) -> dict[str, float | None]:
    """Time to detect (the fault's first evidence -> opened), contain (opened -> contained), recover
    (opened -> validating: data restored and checked) and resolve (opened -> resolved), in seconds.

    The first evidence is the earliest ``evidence_at`` of the detections; without one, the earliest gap or
    scope window start; unknown when the incident has neither. Never negative: evidence found after the incident
    opened (e.g. the corruption behind a lag incident) detected nothing late.
    """
    starts = [g.start for g in gaps] + [w.start for w in incident.scope.windows]
    fault_start = first_evidence(events) or (min(starts) if starts else None)
    detect = _seconds(fault_start, incident.opened_at)
    return {
        "time_to_detect": max(0.0, detect) if detect is not None else None,
        "time_to_contain": _seconds(incident.opened_at, incident.contained_at),
        "time_to_recover": _seconds(incident.opened_at, incident.validating_at),
        "time_to_resolve": _seconds(incident.opened_at, incident.resolved_at),
    }


def render_postmortem(
    incident: Incident,
    events: Sequence[IncidentEvent],
    gaps: Sequence[GapWindow] = (),
    backfills: Sequence[BackfillRecord] = (),
) -> str:
    """``postmortem.md`` draft: summary, timeline, root cause, actions, owners, detect/contain/recover."""
    d = incident_durations(incident, gaps, events)
    missing = sum(g.missing_minutes for g in gaps)
    reconciled = sum(1 for b in backfills if b.verdict == "reconciled")
    lines = [
        f"# Post-mortem (draft): {incident.id}",
        "",
        "## Summary",
        "",
        f"{incident.cause} on {', '.join(incident.scope.markets) or incident.market}, opened {fmt_ts(incident.opened_at)}, "
        f"resolved {fmt_ts(incident.resolved_at)}. {len(gaps)} gap window(s), {missing} missing minute(s); "
        f"{reconciled}/{len(backfills)} backfilled partition(s) reconciled with vendor totals.",
    ]
    if incident.description:
        lines += ["", incident.description]
    lines += [
        "",
        "| Measure | Duration |",
        "| --- | --- |",
        f"| Time to detect | {fmt_duration(d['time_to_detect'])} |",
        f"| Time to contain | {fmt_duration(d['time_to_contain'])} |",
        f"| Time to recover | {fmt_duration(d['time_to_recover'])} |",
        f"| Time to resolve | {fmt_duration(d['time_to_resolve'])} |",
        "",
        "## Root cause",
        "",
        incident.root_cause or "_Not recorded._",
        "",
        "## Actions",
        "",
        *([f"- {a}" for a in incident.actions] or ["_None recorded._"]),
        "",
        "## Owners",
        "",
        *([f"- {o}" for o in incident.owners] or ["_None recorded._"]),
        "",
        "## Vendor references",
        "",
        *([f"- {r}" for r in incident.vendor_refs] or ["_None._"]),
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Event | Message |",
        "| --- | --- | --- |",
        *[f"| {fmt_ts(e.at)} | {e.kind} | {_md_cell(e.message)} |" for e in events],
        "",
        "## Exit criteria at resolution",
        "",
        *render_exit_criteria(incident.last_evaluation),
        "",
    ]
    return "\n".join(lines)


def render_backfill_json(record: BackfillRecord) -> str:
    return json.dumps(record.to_dict(), sort_keys=True, indent=2) + "\n"


def render_backfill_summary(records: Sequence[BackfillRecord]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(BACKFILL_SUMMARY_COLUMNS)
    for r in sorted(records, key=lambda r: (r.market, r.session)):
        writer.writerow([r.market, r.session, r.rows, r.vendor_rows, str(r.checksums_ok).lower(), r.verdict,
                         r.run_id or "", fmt_ts(r.recorded_at)])
    return buf.getvalue()


def incident_dir(incident: Incident) -> str:
    return incident_report_dir(incident.opened_date, incident.id)


def incident_artefacts(
    incident: Incident,
    events: Sequence[IncidentEvent],
    gaps: Sequence[GapWindow],
    backfills: Sequence[BackfillRecord] = (),
) -> dict[str, Put]:
    """``timeline.md`` and ``gap.csv`` (and ``postmortem.md`` once resolved) by key, tagged with the
    incident."""
    base = incident_dir(incident)
    artefacts = {f"{base}/timeline.md": render_timeline(incident, events),
                 f"{base}/gap.csv": render_gap_csv(gaps)}
    if not incident.is_open:
        artefacts[f"{base}/postmortem.md"] = render_postmortem(incident, events, gaps, backfills)
    return {
        key: Put(text.encode("utf-8"), tags={"incident": incident.id},
                 content_type="text/csv" if key.endswith(".csv") else "text/markdown")
        for key, text in artefacts.items()
    }


def write_backfill_reports(store: ObjectStore, incident_id: str, records: Sequence[BackfillRecord]) -> list[str]:
    """One ``<market>-<session>.json`` per backfilled partition plus ``summary.csv``; returns the keys."""
    base = backfill_report_dir(incident_id)
    keys = []
    for r in records:
        key = f"{base}/{r.market}-{r.session}.json"
        store.put_bytes(key, render_backfill_json(r).encode("utf-8"), tags={"incident": incident_id},
                        content_type="application/json")
        keys.append(key)
    key = f"{base}/summary.csv"
    store.put_bytes(key, render_backfill_summary(records).encode("utf-8"), tags={"incident": incident_id},
                    content_type="text/csv")
    return keys + [key]
