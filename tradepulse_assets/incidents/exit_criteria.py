"""Exit criteria (runbook section 5) as a pure function of evidence the caller gathered.

Why pure: the Dagster exit-criteria sensor reads asset-check results and lag history, the CLI shows
the last verdict, and tests write evidence by hand; none of them should need the others to decide
whether an incident may leave recovery. The function returns, per criterion, ``met``, ``not_met``
(evidence of a fault: a breach, a mismatch, a failed gate) or ``pending`` (not enough evidence yet),
with the evidence itself (check keys, run ids, counts) so a person can see *why*.

Criteria and their precise meaning:

1. ``ingestion_stable`` (automatic), per market in scope, with W = 2 x the market's lag SLA:
   take the lag samples up to ``now``; the latest must be below the SLA and no older than
   ``max_sample_gap`` (default: the SLA); walking back, the *stable run* is the longest suffix of
   samples all below the SLA with no two consecutive samples further apart than ``max_sample_gap``.
   ``stable_since`` is the first sample of that run (conservative: the lag is not known to have
   been below the SLA before a sample said so). Met when ``now - stable_since >= W``; pending
   while shorter; not met when the latest sample breaches, is stale, or there are no samples.
2. ``backfills_reconciled`` (automatic): every affected partition (market, session) has a backfill
   record with verdict ``reconciled``. Not met if any record has another verdict; pending if a
   partition has no record yet. No affected partitions: met (nothing to backfill).
3. ``quality_suite_green`` (automatic): on every affected partition, every required quality check
   (including the DST and session-boundary gates) has its latest result passing.
4. ``indicator_tolerances`` (automatic): the same for the indicator tolerance gates (the strategy
   teams' sign-off that derived signals are within tolerance of the pre-incident baselines).
5. ``consumers_caught_up`` (evaluated automatically, required for resolution only): no consumer partition
   of an affected session is still skipped because a hold paused it (containment undone completely). It
   cannot gate ``validating``: the holds are released there, and only then can the consumers catch up.
6. ``resolution_recorded`` (manual): root cause, at least one owner and one action recorded.
7. ``strategy_signoff`` (manual): at least one strategy owner's sign-off is recorded
   (``tradepulse-cli incident signoff``, ``incidents/signoff.py``).

``automatic_met``: criteria 1-4 are met (the incident may go to ``validating`` and consumers
resume). ``all_met``: all of them (the incident may be resolved).
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MET, NOT_MET, PENDING = "met", "not_met", "pending"
STABLE, BACKFILLS, QUALITY, TOLERANCE, CONSUMERS_CAUGHT_UP, RESOLUTION = (
    "ingestion_stable",
    "backfills_reconciled",
    "quality_suite_green",
    "indicator_tolerances",
    "consumers_caught_up",
    "resolution_recorded",
)
SIGNOFF = "strategy_signoff"
AUTOMATIC = (STABLE, BACKFILLS, QUALITY, TOLERANCE)
MAX_LISTED = 20  # evidence lists are truncated to keep timelines readable; counts stay exact


@dataclass(frozen=True)
class LagSample:
    measured_at: dt.datetime
    lag_seconds: float


@dataclass(frozen=True)
class MarketLag:
    """A market's lag SLA and its lag samples (any order; samples after ``now`` are ignored)."""

    sla_seconds: float
    samples: Sequence[LagSample]
    max_sample_gap_seconds: float | None = None  # default: the SLA


@dataclass(frozen=True)
class Reconciliation:
    """A backfilled partition's verdict (from ``IncidentStore.backfills``)."""

    market: str
    session: str
    verdict: str
    rows: int | None = None
    vendor_rows: int | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """The latest result of one asset check on one partition. ``passed=None``: not run/finished yet."""

    check: str  # check name, e.g. "dst_alignment"
    market: str
    partition: str  # session key, e.g. "2026-03-09"
    passed: bool | None
    run_id: str | None = None
    check_key: str | None = None  # full Dagster key, e.g. "XNYS/bars_production:dst_alignment"


@dataclass(frozen=True)
class ExitEvidence:
    now: dt.datetime
    lag: Mapping[str, MarketLag]
    affected_partitions: Sequence[tuple[str, str]] = ()
    backfills: Sequence[Reconciliation] = ()
    required_quality_checks: Sequence[str] = ()
    quality: Sequence[CheckOutcome] = ()
    required_tolerance_checks: Sequence[str] = ()
    tolerance: Sequence[CheckOutcome] = ()
    root_cause: str | None = None
    owners: Sequence[str] = ()
    actions: Sequence[str] = ()
    skipped_consumers: Sequence[tuple[str, str, str]] = ()  # (market, consumer, session) still skipped
    signoffs: Sequence[str] = ()  # strategy owners who signed off


@dataclass(frozen=True)
class CriterionResult:
    name: str
    status: str
    automatic: bool
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.status == MET

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "automatic": self.automatic, "summary": self.summary,
                "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class ExitEvaluation:
    evaluated_at: dt.datetime
    criteria: tuple[CriterionResult, ...]

    @property
    def automatic_met(self) -> bool:
        return all(c.met for c in self.criteria if c.automatic)

    @property
    def all_met(self) -> bool:
        return all(c.met for c in self.criteria)

    def unmet(self, automatic_only: bool = False) -> tuple[str, ...]:
        return tuple(c.name for c in self.criteria if not c.met and (c.automatic or not automatic_only))

    def get(self, name: str) -> CriterionResult:
        return next(c for c in self.criteria if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluated_at": self.evaluated_at.astimezone(dt.timezone.utc).isoformat(),
            "automatic_met": self.automatic_met,
            "all_met": self.all_met,
            "criteria": [c.to_dict() for c in self.criteria],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "ExitEvaluation":
        return cls(
            dt.datetime.fromisoformat(raw["evaluated_at"]),
            tuple(CriterionResult(c["name"], c["status"], c["automatic"], c["summary"], c.get("evidence", {}))
                  for c in raw["criteria"]),
        )


def _worst(statuses: Sequence[str]) -> str:
    if NOT_MET in statuses:
        return NOT_MET
    if PENDING in statuses:
        return PENDING
    return MET


def market_stability(market: str, lag: MarketLag, now: dt.datetime) -> dict[str, Any]:
    """One market's stability verdict (see the module docstring for the exact rule)."""
    window = 2.0 * lag.sla_seconds
    max_gap = lag.max_sample_gap_seconds if lag.max_sample_gap_seconds is not None else lag.sla_seconds
    samples = sorted((s for s in lag.samples if s.measured_at <= now), key=lambda s: s.measured_at)
    base = {"market": market, "sla_seconds": lag.sla_seconds, "required_seconds": window,
            "max_sample_gap_seconds": max_gap, "samples": len(samples)}
    if not samples:
        return {**base, "status": NOT_MET, "reason": "no lag samples"}
    latest = samples[-1]
    base.update(latest_lag_seconds=latest.lag_seconds, latest_at=latest.measured_at.isoformat())
    if latest.lag_seconds >= lag.sla_seconds:
        return {**base, "status": NOT_MET, "reason": f"latest lag {latest.lag_seconds:.0f}s >= SLA {lag.sla_seconds:.0f}s"}
    staleness = (now - latest.measured_at).total_seconds()
    if staleness > max_gap:
        return {**base, "status": NOT_MET, "reason": f"no lag sample for {staleness:.0f}s (> {max_gap:.0f}s)"}
    run_start = len(samples) - 1
    while run_start > 0:
        prev, cur = samples[run_start - 1], samples[run_start]
        if prev.lag_seconds >= lag.sla_seconds or (cur.measured_at - prev.measured_at).total_seconds() > max_gap:
            break
        run_start -= 1
    since = samples[run_start].measured_at
    stable_for = (now - since).total_seconds()
    status = MET if stable_for >= window else PENDING
    result = {**base, "status": status, "stable_since": since.isoformat(), "stable_for_seconds": stable_for}
    if status == PENDING:
        result["met_at_earliest"] = (since + dt.timedelta(seconds=window)).isoformat()
    return result


def _stability(evidence: ExitEvidence) -> CriterionResult:
    per_market = [market_stability(m, lag, evidence.now) for m, lag in sorted(evidence.lag.items())]
    if not per_market:
        return CriterionResult(STABLE, PENDING, True, "no markets with lag evidence", {"markets": []})
    status = _worst([p["status"] for p in per_market])
    parts = []
    for p in per_market:
        if p["status"] == MET:
            parts.append(f"{p['market']} below SLA for {p['stable_for_seconds']:.0f}s >= {p['required_seconds']:.0f}s")
        elif p["status"] == PENDING:
            parts.append(f"{p['market']} below SLA for {p['stable_for_seconds']:.0f}s of {p['required_seconds']:.0f}s")
        else:
            parts.append(f"{p['market']}: {p['reason']}")
    return CriterionResult(STABLE, status, True, "; ".join(parts), {"markets": per_market})


def _backfills(evidence: ExitEvidence) -> CriterionResult:
    latest = {(b.market, b.session): b for b in evidence.backfills}
    affected = sorted(set(evidence.affected_partitions))
    missing = [f"{m}/{s}" for m, s in affected if (m, s) not in latest]
    bad = [latest[p] for p in affected if p in latest and latest[p].verdict != "reconciled"]
    ok = [latest[p] for p in affected if p in latest and latest[p].verdict == "reconciled"]
    status = NOT_MET if bad else PENDING if missing else MET
    ev = {
        "affected": len(affected),
        "reconciled": len(ok),
        "missing": missing[:MAX_LISTED],
        "mismatched": [
            {"partition": f"{b.market}/{b.session}", "verdict": b.verdict, "rows": b.rows,
             "vendor_rows": b.vendor_rows, "run_id": b.run_id}
            for b in bad[:MAX_LISTED]
        ],
        "run_ids": sorted({b.run_id for b in ok + bad if b.run_id})[:MAX_LISTED],
    }
    if not affected:
        summary = "no affected partitions to backfill"
    else:
        summary = f"{len(ok)}/{len(affected)} partitions reconciled"
        summary += f", {len(bad)} mismatched" if bad else ""
        summary += f", {len(missing)} without backfill" if missing else ""
    return CriterionResult(BACKFILLS, status, True, summary, ev)


def _checks(name: str, what: str, required: Sequence[str], outcomes: Sequence[CheckOutcome],
            affected: Sequence[tuple[str, str]]) -> CriterionResult:
    latest = {(o.market, o.partition, o.check): o for o in outcomes}  # later outcomes win
    expected = [(m, s, c) for m, s in sorted(set(affected)) for c in required]
    failed = [latest[k] for k in expected if k in latest and latest[k].passed is False]
    waiting = [k for k in expected if k not in latest or latest[k].passed is None]
    passed = [latest[k] for k in expected if k in latest and latest[k].passed is True]
    status = NOT_MET if failed else PENDING if waiting else MET
    ev = {
        "required_checks": list(required),
        "expected": len(expected),
        "passed": len(passed),
        "failed": [{"check": o.check_key or o.check, "partition": f"{o.market}/{o.partition}", "run_id": o.run_id}
                   for o in failed[:MAX_LISTED]],
        "waiting": [f"{m}/{s}:{c}" for m, s, c in waiting[:MAX_LISTED]],
        "run_ids": sorted({o.run_id for o in passed + failed if o.run_id})[:MAX_LISTED],
    }
    if not expected:
        summary = f"no {what} required on affected partitions"
    else:
        summary = f"{len(passed)}/{len(expected)} {what} passing"
        summary += f", {len(failed)} failing" if failed else ""
        summary += f", {len(waiting)} not yet run" if waiting else ""
    return CriterionResult(name, status, True, summary, ev)


def _consumers(evidence: ExitEvidence) -> CriterionResult:
    affected = set(evidence.affected_partitions)
    behind = sorted({(m, c, s) for m, c, s in evidence.skipped_consumers if (m, s) in affected})
    listed = [f"{m}/{c}/{s}" for m, c, s in behind]
    if behind:
        return CriterionResult(CONSUMERS_CAUGHT_UP, PENDING, False,
                               f"{len(behind)} consumer partition(s) skipped by a hold, not yet re-run",
                               {"skipped": listed[:MAX_LISTED], "count": len(behind)})
    return CriterionResult(CONSUMERS_CAUGHT_UP, MET, False,
                           "every consumer partition skipped by a hold was re-run", {"skipped": [], "count": 0})


def _resolution(evidence: ExitEvidence) -> CriterionResult:
    lacking = [n for n, v in (("root cause", evidence.root_cause), ("owners", evidence.owners),
                              ("actions", evidence.actions)) if not v]
    status = PENDING if lacking else MET
    summary = "root cause, owners and actions recorded" if not lacking else f"missing: {', '.join(lacking)}"
    return CriterionResult(RESOLUTION, status, False, summary, {
        "root_cause": evidence.root_cause, "owners": list(evidence.owners), "actions": list(evidence.actions)})


def _signoff(signoffs: Sequence[str]) -> CriterionResult:
    status = MET if signoffs else PENDING
    summary = f"signed off by {', '.join(signoffs)}" if signoffs else "no strategy owner has signed off yet"
    return CriterionResult(SIGNOFF, status, False, summary, {"signed_off_by": list(signoffs)})


def evaluate(evidence: ExitEvidence) -> ExitEvaluation:
    """Evaluate the exit criteria on ``evidence`` (pure; no clock, no I/O)."""
    if evidence.now.tzinfo is None:
        raise ValueError("ExitEvidence.now must be an aware UTC datetime")
    return ExitEvaluation(
        evidence.now,
        (
            _stability(evidence),
            _backfills(evidence),
            _checks(QUALITY, "quality checks", evidence.required_quality_checks, evidence.quality,
                    evidence.affected_partitions),
            _checks(TOLERANCE, "tolerance gates", evidence.required_tolerance_checks, evidence.tolerance,
                    evidence.affected_partitions),
            _consumers(evidence),
            _resolution(evidence),
            _signoff(evidence.signoffs),
        ),
    )


def with_resolution(evaluation: ExitEvaluation, root_cause: str | None, owners: Sequence[str],
                    actions: Sequence[str]) -> ExitEvaluation:
    """The same evaluation with the manual criterion re-judged (resolving supplies it after the sensor ran)."""
    manual = _resolution(ExitEvidence(evaluation.evaluated_at, {}, root_cause=root_cause, owners=tuple(owners),
                                      actions=tuple(actions)))
    criteria = tuple(manual if c.name == RESOLUTION else c for c in evaluation.criteria)
    return ExitEvaluation(evaluation.evaluated_at, criteria)


def with_signoffs(evaluation: ExitEvaluation, signoffs: Sequence[str]) -> ExitEvaluation:
    """The same evaluation with the sign-off re-judged (added when an older evaluation lacks it)."""
    criteria = tuple(c for c in evaluation.criteria if c.name != SIGNOFF) + (_signoff(signoffs),)
    return ExitEvaluation(evaluation.evaluated_at, criteria)
