"""The incident engine: the runbook's lifecycle (detect, contain, recover, validate, resolve, follow up)
over the store, the control plane and the artefacts.

Why a separate layer over the store: the store guarantees *data* invariants (one open incident per
fingerprint, legal transitions); the engine applies *policy* in one place so the lag sensor, the
quality-failure sensor, the exit-criteria sensor and the CLI behave the same:

- opening an incident applies the containment policy of its cause to every market in scope and
  moves it to ``contained``; a repeated detection widens the scope (containing new markets) and,
  if the incident was already ``validating``, sends it back to ``recovering`` (the fault recurred);
- an evaluation whose automatic criteria hold moves it to ``validating`` and resumes the consumers
  it paused (promotions stay frozen until resolution); a later evaluation that fails sends it back
  to ``recovering`` and pauses them again;
- resolving requires all criteria (``ExitCriteriaNotMet`` otherwise, unless forced), releases every
  hold of the incident, schedules the chaos replay within 30 days, creates the runbook's follow-up action
  items (owner and due date: ``followups.py``) and writes the post-mortem draft.

Every step that changes the incident rewrites ``timeline.md`` and ``gap.csv`` so the artefacts always match
the database; an evaluation that found nothing new writes nothing. A sensor evaluating every open incident
reads their evidence in bulk (``gather_evidence_of``) and defers the artefact writes of its tick
(``artefacts_deferred``) to one group commit: 200 incidents opened at once cost one flush, not 1,600 fsyncs.
"""

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tradepulse_assets.incidents import exit_criteria as ec
from tradepulse_assets.incidents.control_plane import CONSUMERS, STRATEGY_PROMOTIONS, ControlPlane, containment_for
from tradepulse_assets.incidents.followups import FollowupActions
from tradepulse_assets.incidents.model import (
    ExitCriteriaNotMet,
    GapWindow,
    Incident,
    IncidentState,
    Scope,
    TimeWindow,
    reconciliation_verdict,
)
from tradepulse_assets.incidents.signoff import Signoffs
from tradepulse_assets.incidents.reports import incident_artefacts, write_backfill_reports
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.storage.home import tradepulse_home
from tradepulse_assets.storage.object_store import LocalObjectStore, ObjectStore
from tradepulse_assets.storage.state import StateDB

FOLLOWUP_DAYS = 30
S = IncidentState


def chaos_scenario_for(incident: Incident) -> str:
    """The chaos replay that re-creates an incident's fault: ``<cause>:<market>``."""
    return f"{incident.cause}:{incident.market}"


class IncidentEngine:
    """One entry point for sensors and the CLI. ``artefacts``: where reports go (default ``$TRADEPULSE_HOME``)."""

    def __init__(self, db: StateDB, artefacts: ObjectStore | None = None, markets: Sequence[str] | None = None):
        self.db = db
        self.store = IncidentStore(db)
        self.control = ControlPlane(db, markets)
        self._artefacts = artefacts
        self._deferred: set[str] | None = None  # incidents whose artefacts wait for the deferral to end

    @property
    def artefacts(self) -> ObjectStore:
        if self._artefacts is None:
            self._artefacts = LocalObjectStore(tradepulse_home())
        return self._artefacts

    def write_artefacts(self, *incident_ids: str) -> list[str]:
        """Rewrite the incidents' artefacts from the database, all with one group commit; returns the keys
        (none while ``artefacts_deferred``: they are written when it ends)."""
        if self._deferred is not None:
            self._deferred.update(incident_ids)
            return []
        if not incident_ids:
            return []
        incidents = self.store.get_many(incident_ids)
        events, gaps = self.store.events_of(incident_ids), self.store.gap_windows_of(incident_ids)
        backfills = self.store.backfills_of(incident_ids)
        objects = {}
        for incident_id, incident in incidents.items():
            objects.update(incident_artefacts(incident, events[incident_id], gaps[incident_id],
                                              backfills[incident_id]))
        self.artefacts.put_many(objects)
        return list(objects)

    @contextmanager
    def artefacts_deferred(self) -> Iterator[None]:
        """Within, artefact writes only note the incident; on leaving (an error too: what was committed is
        shown), each noted incident's artefacts are rendered from the database once and all are written with
        one group commit. Nested uses join the outermost."""
        if self._deferred is not None:
            yield
            return
        self._deferred = set()
        try:
            yield
        finally:
            pending, self._deferred = sorted(self._deferred), None
            self.write_artefacts(*pending)

    # -- detect and contain ------------------------------------------------------------------------
    def detect(
        self,
        cause: str,
        market: str,
        *,
        now: dt.datetime,
        scope: Scope | None = None,
        symbols: Sequence[str] = (),
        sessions: Sequence[str] = (),
        windows: Sequence[TimeWindow] = (),
        gaps: Sequence[GapWindow] = (),
        description: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> tuple[Incident, bool]:
        """Open (and contain) an incident for a detected fault, or join the open one. ``(incident, opened)``."""
        gap_scope = Scope(markets=tuple(g.market for g in gaps), sessions=tuple(g.session for g in gaps if g.session))
        incident, opened = self.store.open_or_join(
            cause, market, now=now, scope=(scope or Scope()).merge(gap_scope), symbols=symbols, sessions=sessions,
            windows=tuple(windows) + tuple(TimeWindow(g.start, g.end) for g in gaps),
            description=description, data=data,
        )
        if gaps:
            self.store.add_gap_windows(incident.id, gaps, now=now)
        if incident.state is S.VALIDATING:
            self.store.transition(incident.id, S.RECOVERING, now=now, reason="fault detected again during validation")
        self._contain(incident.id, now=now)
        self.write_artefacts(incident.id)
        return self.store.get(incident.id), opened

    def _contain(self, incident_id: str, *, now: dt.datetime) -> None:
        """Apply the cause's containment to every market in scope that this incident does not hold yet."""
        incident = self.store.get(incident_id)
        held = set(self.control.holds_of(incident_id))
        toggles = containment_for(incident.cause)
        if incident.state is S.VALIDATING:
            toggles = tuple(t for t in toggles if t not in CONSUMERS)
        applied = []
        for market in incident.scope.markets or (incident.market,):
            for toggle in toggles:
                if (market, toggle) not in held:
                    self.control.pause(market, toggle, reason=f"containment of {incident.cause}", now=now,
                                       incident_id=incident_id)
                    applied.append(f"{market}/{toggle}")
        if incident.state is S.DETECTED:
            reason = f"applied {', '.join(applied)}" if applied else "nothing to pause for this cause"
            self.store.transition(incident_id, S.CONTAINED, now=now, reason=reason)

    def reclassify(self, incident_id: str, cause: str, *, now: dt.datetime, reason: str) -> Incident:
        """Rename an open incident by stronger evidence and apply that cause's containment too."""
        self.store.reclassify(incident_id, cause, now=now, reason=reason)
        self._contain(incident_id, now=now)
        self.write_artefacts(incident_id)
        return self.store.get(incident_id)

    # -- recover -----------------------------------------------------------------------------------
    def start_recovery(self, incident_id: str, *, now: dt.datetime, message: str = "") -> Incident:
        """``contained -> recovering`` (a backfill or reseed was launched); a no-op when already recovering."""
        incident = self.store.get(incident_id)
        if incident.state is not S.RECOVERING:
            self.store.transition(incident_id, S.RECOVERING, now=now, reason=message or "recovery started")
        elif message:
            self.store.add_event(incident_id, "recovery", message, now=now)
        self.write_artefacts(incident_id)
        return self.store.get(incident_id)

    def record_backfill(
        self, incident_id: str, market: str, session: str, rows: int, vendor_rows: int, checksums_ok: bool,
        *, now: dt.datetime, run_id: str | None = None, details: Mapping[str, Any] | None = None,
    ):
        """Record a backfilled partition's reconciliation (verdict computed here) and write its report."""
        verdict = reconciliation_verdict(rows, vendor_rows, checksums_ok)
        record = self.store.record_backfill(incident_id, market, session, rows, vendor_rows, checksums_ok, verdict,
                                            now=now, run_id=run_id, details=details)
        gap_status = "reconciled" if verdict == "reconciled" else "backfilled"
        self.store.mark_session_gaps(incident_id, market, session, gap_status, now=now)
        write_backfill_reports(self.artefacts, incident_id, self.store.backfills(incident_id))
        self.write_artefacts(incident_id)
        return record

    # -- validate ----------------------------------------------------------------------------------
    def gather_evidence(
        self,
        incident_id: str,
        *,
        now: dt.datetime,
        sla_seconds: Mapping[str, float],
        required_quality_checks: Sequence[str] = (),
        quality: Sequence[ec.CheckOutcome] = (),
        required_tolerance_checks: Sequence[str] = (),
        tolerance: Sequence[ec.CheckOutcome] = (),
    ) -> ec.ExitEvidence:
        """Evidence from the state DB (lag history, backfills, gaps, resolution) plus the caller's check results.

        Affected partitions: the sessions of the gap windows, plus every scope session of every scope market.
        Lag history covers the last ``2 x SLA + SLA`` seconds (the window plus one sample interval).
        """
        [evidence] = self.gather_evidence_of([self.store.get(incident_id)], now=now, sla_seconds=sla_seconds)
        return dataclasses.replace(
            evidence, required_quality_checks=tuple(required_quality_checks), quality=tuple(quality),
            required_tolerance_checks=tuple(required_tolerance_checks), tolerance=tuple(tolerance),
        )

    def gather_evidence_of(
        self, incidents: Sequence[Incident], *, now: dt.datetime, sla_seconds: Mapping[str, float]
    ) -> list[ec.ExitEvidence]:
        """``gather_evidence`` (without check results) of each of ``incidents`` as read, in a few queries
        whatever their number: one per table, and one per market for its lag history."""
        ids = [incident.id for incident in incidents]
        gaps, backfills = self.store.gap_windows_of(ids), self.store.backfills_of(ids)
        signoffs = Signoffs(self.db).owners_of(ids)
        lag_of: dict[str, ec.MarketLag] = {}
        evidence = []
        for incident in incidents:
            for market in incident.scope.markets or (incident.market,):
                if market not in lag_of:
                    sla = float(sla_seconds[market])
                    rows = self.db.lag_history(market, now - dt.timedelta(seconds=3 * sla), until=now)
                    lag_of[market] = ec.MarketLag(
                        sla, tuple(ec.LagSample(r["measured_at"], r["lag_seconds"]) for r in rows)
                    )
            affected = {(g.market, g.session) for g in gaps[incident.id] if g.session}
            affected |= {(m, s) for m in incident.scope.markets for s in incident.scope.sessions}
            evidence.append(ec.ExitEvidence(
                now=now, lag={m: lag_of[m] for m in incident.scope.markets or (incident.market,)},
                affected_partitions=tuple(sorted(affected)),
                backfills=tuple(
                    ec.Reconciliation(b.market, b.session, b.verdict, b.rows, b.vendor_rows, b.run_id)
                    for b in backfills[incident.id]
                ),
                root_cause=incident.root_cause, owners=incident.owners, actions=incident.actions,
                signoffs=signoffs[incident.id],
            ))
        return evidence

    def evaluate(self, incident_id: str, evidence: ec.ExitEvidence,
                 incident: Incident | None = None) -> ec.ExitEvaluation:
        """Evaluate exit criteria, store the verdict on the incident and move the lifecycle accordingly.
        ``incident``: as the caller just read it (a sensor's bulk read); by default, read here."""
        now = evidence.now
        incident = incident if incident is not None else self.store.get(incident_id)
        evaluation = ec.evaluate(evidence)
        if evidence.root_cause is None and incident.root_cause:
            evaluation = ec.with_resolution(evaluation, incident.root_cause, incident.owners, incident.actions)
        # Sensors evaluate every open incident every tick: the verdict and the artefacts are written only when
        # their content changed (the verdict's ``evaluated_at`` is then the time of the last change).
        content_changed = _content(incident.last_evaluation) != _content(evaluation.to_dict())
        # A changed verdict and what it changes (state, holds, timeline) commit in one transaction, and the
        # artefacts are written after it committed; an unchanged one opens no write transaction.
        transaction = self.db.transaction() if content_changed else contextlib.nullcontext()
        with self.artefacts_deferred(), transaction:
            self._apply_evaluation(incident, evaluation, content_changed, now)
        return evaluation

    def _apply_evaluation(self, incident: Incident, evaluation: ec.ExitEvaluation, content_changed: bool,
                          now: dt.datetime) -> None:
        incident_id = incident.id
        if content_changed:
            self.store.save_evaluation(incident_id, evaluation.to_dict(), now=now)
        if not incident.is_open:
            return
        if evaluation.automatic_met and incident.state in (S.CONTAINED, S.RECOVERING):
            if incident.state is S.CONTAINED:
                self.store.transition(incident_id, S.RECOVERING, now=now, reason="recovered without intervention")
            self.store.transition(incident_id, S.VALIDATING, now=now, reason="automatic exit criteria met",
                                  data={"criteria": [c.to_dict() for c in evaluation.criteria if c.automatic]})
            self.control.release_incident(incident_id, reason="automatic exit criteria met", now=now,
                                          toggles=CONSUMERS)
        elif not evaluation.automatic_met and incident.state is S.VALIDATING:
            unmet = ", ".join(evaluation.unmet(automatic_only=True))
            self.store.transition(incident_id, S.RECOVERING, now=now, reason=f"exit criteria regressed: {unmet}")
            self._contain(incident_id, now=now)
        elif _changed(incident.last_evaluation, evaluation):
            summary = "; ".join(f"{c.name} {c.status}" for c in evaluation.criteria)
            self.store.add_event(incident_id, "exit_criteria", summary, now=now)
        elif not content_changed:
            return  # nothing new: timeline.md and gap.csv already say all of this
        self.write_artefacts(incident_id)

    # -- resolve and follow up ---------------------------------------------------------------------
    def resolve(
        self,
        incident_id: str,
        *,
        now: dt.datetime,
        root_cause: str,
        owners: Sequence[str],
        actions: Sequence[str],
        force: bool = False,
    ) -> Incident:
        """Record the resolution and resolve if every exit criterion holds (``force`` overrides, logged)."""
        incident = self.store.record_resolution(incident_id, now=now, root_cause=root_cause, owners=owners,
                                                actions=actions)
        if incident.last_evaluation is None:
            evaluation = None
            unmet: tuple[str, ...] = ec.AUTOMATIC
            why = "exit criteria were never evaluated"
        else:
            evaluation = ec.with_resolution(ec.ExitEvaluation.from_dict(incident.last_evaluation),
                                            root_cause, owners, actions)
            evaluation = ec.with_signoffs(evaluation, Signoffs(self.db).owners(incident_id))
            self.store.save_evaluation(incident_id, evaluation.to_dict(), now=now)
            unmet = evaluation.unmet()
            why = "; ".join(f"{c.name}: {c.status} ({c.summary})" for c in evaluation.criteria if not c.met)
        if unmet and not force:
            self.write_artefacts(incident_id)
            raise ExitCriteriaNotMet(f"incident {incident_id} cannot be resolved: {why}", unmet)
        reason = f"forced with unmet criteria: {', '.join(unmet)}" if unmet else "all exit criteria met"
        self.store.resolve(incident_id, now=now, reason=reason, force=force)
        self.control.release_incident(incident_id, reason=f"incident {incident_id} resolved", now=now)
        incident = self.store.get(incident_id)
        self.store.schedule_followup(incident_id, scenario=chaos_scenario_for(incident),
                                     due_at=now + dt.timedelta(days=FOLLOWUP_DAYS), now=now)
        FollowupActions(self.db).create_for(incident, now=now)
        self.write_artefacts(incident_id)
        return self.store.get(incident_id)

    def due_followups(self, now: dt.datetime):
        return self.store.due_followups(now)


def _content(evaluation: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """An evaluation without its time stamp, as stored (JSON): two ticks that found the same things compare equal."""
    if evaluation is None:
        return None
    return json.loads(json.dumps({k: v for k, v in evaluation.items() if k != "evaluated_at"}, default=str))


def _changed(previous: Mapping[str, Any] | None, evaluation: ec.ExitEvaluation) -> bool:
    """Log an evaluation on the timeline only when some criterion's status changed (sensors tick often)."""
    if previous is None:
        return True
    before = {c["name"]: c["status"] for c in previous.get("criteria", ())}
    return before != {c.name: c.status for c in evaluation.criteria}


__all__ = ["FOLLOWUP_DAYS", "IncidentEngine", "STRATEGY_PROMOTIONS", "chaos_scenario_for"]
