"""The decisions of the self-healing loop, as pure functions of what the caller observed.

Why pure and in one place: the publication sensor, the lag sensor, the quality-failure sensor, the CLI and the
chaos follow-ups all ask the same questions ("may I land this session now?", "is this failure a new
quarantine?", "which cause names this incident?"). When each path answered for itself, two sensors launched
the same partition 10 s apart and an unchanged corrupt delivery was retried and re-quarantined every few
minutes. Here the caller gathers the facts (vendor manifest, what production holds, runs in flight, the
deliveries already quarantined) into a ``SessionView``; the answer is a ``Decision``; Dagster wiring only
translates a ``launch`` into a ``RunRequest``. Tests exercise every rule without an instance.

An *attempt* is one (market, session, vendor revision, delivery digest): the unit that is launched at most
once, whoever launches it. A retry happens only when the vendor changed something (revision or bytes), never
on a timer.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

LAUNCH, WAIT, SKIP, REFUSE = "launch", "wait", "skip", "refuse"
PUBLISHED_CONDITIONS = ("available", "degraded")
DIGEST_CHARS = 12  # enough to tell deliveries apart in names and run keys, short enough to read

# The strongest evidence names an incident: a corrupt delivery is also late, but "late" hides the fault.
CAUSE_STRENGTH = (
    "checksum_mismatch",
    "schema_mismatch",
    "vendor_restatement",
    "vendor_degraded",  # the vendor's own word explains the gates it also fails
    "quality_gate",
    "tolerance_gate",
    "lag_breach",
    "vendor_delay",
)


@dataclass(frozen=True)
class SessionView:
    """What a launcher knows about one market session at one moment.

    ``vendor_revision``/``vendor_condition``: the vendor's current manifest (``None``: nothing published).
    ``vendor_digest``: digest of the delivery as it is now (manifest and bytes), ``None`` if not computed.
    ``held_revision``/``held_digest``: what production holds (``None``: nothing promoted yet).
    ``attempted``: attempt keys already launched by anyone (any outcome). ``in_flight``: a run of this session
    is queued or running. ``quarantined_digests``: deliveries of this session already quarantined.
    ``incident_id``: the open incident covering the session, if any.
    """

    market: str
    session: dt.date
    vendor_revision: int | None
    vendor_condition: str | None = None
    vendor_digest: str | None = None
    held_revision: int | None = None
    held_digest: str | None = None
    attempted: frozenset[str] = frozenset()
    in_flight: bool = False
    quarantined_digests: frozenset[str] = frozenset()
    incident_id: str | None = None
    vendor_unreadable: bool = False  # the manifest cannot be read: a failed delivery (revision 0), not lag

    @property
    def published(self) -> bool:
        return self.vendor_revision is not None and self.vendor_condition in PUBLISHED_CONDITIONS


@dataclass(frozen=True)
class Decision:
    action: str  # launch | wait | skip | refuse
    reason: str
    attempt_key: str | None = None
    incident_id: str | None = None

    @property
    def launch(self) -> bool:
        return self.action == LAUNCH


def short_digest(digest: str | None) -> str:
    return (digest or "nodigest")[:DIGEST_CHARS]


def attempt_key(market: str, session: dt.date, revision: int, digest: str | None) -> str:
    """The identity of one landing attempt: the same for every launcher, so nobody launches it twice."""
    return f"{market}:{session.isoformat()}:r{revision}:{short_digest(digest)}"


def revision_verdict(incoming_revision: int, incoming_digest: str | None, held_revision: int | None,
                     held_digest: str | None) -> tuple[bool, str]:
    """May a delivery of ``incoming_revision`` replace what production holds? ``(allowed, reason)``.

    Revisions only move forward: lower is a rollback (refused); higher is a restatement; equal is a re-run
    (idempotent with the same bytes). Equal with other bytes (a re-delivery, or the same session from another
    vendor) is landed only by an explicit run: no sensor launches it (``decide_launch`` skips a session whose
    revision production holds), so a restatement still needs a strictly higher revision to flow on its own.
    """
    if held_revision is None:
        return True, "nothing in production yet"
    if incoming_revision > held_revision:
        return True, f"revision {incoming_revision} supersedes {held_revision}"
    if incoming_revision < held_revision:
        return False, (f"revision {incoming_revision} is older than revision {held_revision} in production "
                       "(rollback)")
    return True, f"revision {incoming_revision} is the revision production holds (re-run)"


def overtaken(launched_at: dt.datetime, vendor_revision: int, vendor_digest: str | None,
              held_revision: int | None, held_digest: str | None, held_promoted_at: dt.datetime | None) -> bool:
    """Was this launch overtaken: did production come to hold exactly this delivery (same revision, same
    bytes) after the run was launched? Then another run of the partition, launched at the same time (two
    people clicking Materialize, a UI launch racing a sensor), already landed it while this one waited for
    the session's lease, and nothing is left to do. A run launched later is a deliberate re-run and lands."""
    if held_revision is None or held_promoted_at is None or not vendor_digest or not held_digest:
        return False
    same = vendor_revision == held_revision and short_digest(vendor_digest) == short_digest(held_digest)
    return same and held_promoted_at > launched_at


def decide_launch(view: SessionView) -> Decision:
    """Should a landing of this session be launched now? The one rule every launcher follows."""
    where = f"{view.market} {view.session}"
    if not view.published:
        why = ("nothing published" if view.vendor_revision is None
               else f"vendor condition {view.vendor_condition!r}")
        return Decision(WAIT, f"{where}: {why}; waiting for the vendor")
    key = attempt_key(view.market, view.session, view.vendor_revision, view.vendor_digest)
    if view.vendor_unreadable:
        return _decide_unreadable(view, key, where)
    if view.held_revision is not None and view.vendor_revision == view.held_revision and (
        view.vendor_digest is None or view.held_digest is None
        or short_digest(view.vendor_digest) == short_digest(view.held_digest)
    ):
        return Decision(SKIP, f"{where}: production already holds revision {view.held_revision}", key)
    allowed, why = revision_verdict(view.vendor_revision, view.vendor_digest, view.held_revision,
                                    view.held_digest)
    if not allowed:
        return Decision(REFUSE, f"{where}: {why}", key, view.incident_id)
    if view.in_flight:
        return Decision(WAIT, f"{where}: a run of this session is queued or running", key, view.incident_id)
    if view.vendor_digest and not should_quarantine(view.vendor_digest, view.quarantined_digests):
        delivery = f"r{view.vendor_revision}, {short_digest(view.vendor_digest)}"
        why = f"{where}: this delivery ({delivery}) is quarantined; waiting for the vendor to change it"
        return Decision(SKIP, why, key, view.incident_id)
    if key in view.attempted:
        return Decision(SKIP, f"{where}: attempt {key} was already launched", key, view.incident_id)
    return Decision(LAUNCH, f"{where}: {why}", key, view.incident_id)


def _decide_unreadable(view: SessionView, key: str, where: str) -> Decision:
    """An unreadable manifest has no revision to compare with production: it is landed once, so the landing
    fails and the delivery is quarantined with its reason, and launched again only when its bytes change."""
    if view.in_flight:
        return Decision(WAIT, f"{where}: a run of this session is queued or running", key, view.incident_id)
    if not should_quarantine(view.vendor_digest, view.quarantined_digests):
        delivery = short_digest(view.vendor_digest)
        why = f"{where}: the unreadable delivery {delivery} is quarantined; waiting for the vendor to fix it"
        return Decision(SKIP, why, key, view.incident_id)
    if key in view.attempted:
        return Decision(SKIP, f"{where}: attempt {key} was already launched", key, view.incident_id)
    why = f"{where}: the vendor's manifest is unreadable; landing it fails and quarantines it"
    return Decision(LAUNCH, why, key, view.incident_id)


def should_quarantine(digest: str | None, quarantined_digests: Iterable[str]) -> bool:
    """One batch per distinct delivery: a failure of bytes already quarantined adds nothing."""
    if digest is None:
        return True  # unknown bytes: keep them (a duplicate is safer than a loss)
    return short_digest(digest) not in {short_digest(d) for d in quarantined_digests}


def strongest_cause(causes: Iterable[str]) -> str:
    """The cause with the strongest evidence (``CAUSE_STRENGTH`` order; unknown causes rank after known)."""
    rank = {c: i for i, c in enumerate(CAUSE_STRENGTH)}
    ranked = sorted(set(causes), key=lambda c: (rank.get(c, len(rank)), c))
    if not ranked:
        raise ValueError("no cause to rank")
    return ranked[0]


def reclassify(current_cause: str, new_evidence_cause: str) -> str | None:
    """The cause an open incident should carry after new evidence: ``None`` when it stays as it is."""
    stronger = strongest_cause((current_cause, new_evidence_cause))
    return stronger if stronger != current_cause else None


def attach_incident(run_incident_tag: str | None, covering_incident: str | None) -> str | None:
    """The incident a run reports into: its tag if it has one, else the open incident covering its session.

    A recovery counts whoever launched it (a UI re-run carries no tag)."""
    return run_incident_tag or covering_incident


def backfill_started_stage(run_started: bool, incident_state: str) -> bool:
    """Tell people "backfill initiated" only when a run of the incident actually started, and only once
    (the incident is not yet recovering)."""
    return run_started and incident_state in ("detected", "contained")


@dataclass(frozen=True)
class ConsumerSkip:
    market: str
    consumer: str
    session: str


def catch_up_requests(skips: Iterable[ConsumerSkip], paused: Iterable[tuple[str, str]]) -> list[ConsumerSkip]:
    """Exactly the skipped (market, consumer, session) whose consumer is no longer paused."""
    held = set(paused)
    return sorted({s for s in skips if (s.market, s.consumer) not in held},
                  key=lambda s: (s.market, s.consumer, s.session))


def worst_outcome(outcomes: Iterable[str]) -> int:
    """Exit code of a backfill range: 0 all reconciled, 1 some session not reconciled, 2 a session refused or
    failed to run. Every session is attempted and recorded before this is computed."""
    codes = {"reconciled": 0, "skipped": 0, "not_published": 1, "mismatch": 1, "gates_failed": 1,
             "quarantine": 1, "refused": 2, "failed": 2}
    return max((codes.get(o, 2) for o in outcomes), default=0)


def session_outcome(*, run_success: bool, refused: bool, not_published: bool, landing_failed: bool,
                    failed_gates: Iterable[str], reconciled: bool | None) -> str:
    """One backfilled session's verdict from what its run did (the report's ``verdict``)."""
    if refused:
        return "refused"
    if not_published:
        return "not_published"
    if landing_failed:
        return "quarantine"
    if list(failed_gates):
        return "gates_failed"
    if not run_success:
        return "failed"
    return "reconciled" if reconciled else "mismatch"
