"""The runbook's response with its communications: the incident engine plus the five-stage messages.

``IncidentEngine`` (incidents layer) owns state, containment and artefacts; this wrapper adds what needs
other layers: baselines of the affected features (lake) when an incident opens, and the communication
plan posted to the durable notification outbox at each stage (``incidents/notifications``). Posting never
waits on the network; the delivery worker sends, and a message it gives up on goes on the timeline.

These methods are the communication entry points other layers call (sensors, the CLI, the launch decisions):
``communicate`` for a stage, ``start_recovery`` ("backfill initiated"), ``resolve`` (post-mortem and the
PagerDuty resolve, forced resolutions included).
"""

import datetime as dt
from collections.abc import Callable, Sequence

from tradepulse_assets.incidents import exit_criteria as ec
from tradepulse_assets.incidents.communications import (
    IncidentBrief,
    Message,
    Stage,
    kill_switch_notice,
    messages_for,
    pagerduty_resolve,
)
from tradepulse_assets.incidents.control_plane import STRATEGY_PROMOTIONS
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.model import GapWindow, Incident, IncidentState, TimeWindow
from tradepulse_assets.incidents.notifications import Notifications, OutboxEntry, notifications_for
from tradepulse_assets.incidents.notifications.delivery import note_on_timeline
from tradepulse_assets.incidents.reports import incident_dir
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.pipeline.features import snapshot_baseline
from tradepulse_assets.storage.object_store import ObjectStore, runbook_store
from tradepulse_assets.storage.state import StateDB


def open_incident_covering(store: IncidentStore, market_id: str, session: dt.date) -> Incident | None:
    """The newest open incident whose scope includes this market session: one fault, one incident,
    whichever sensor saw it first (a corrupted delivery is also late)."""
    for incident in store.list(market=market_id, open_only=True):
        if session.isoformat() in incident.scope.sessions:
            return incident
    return None


class Responder:
    """``notifications`` is the outbox messages are posted to; ``clock_now`` stamps timeline events."""

    def __init__(
        self,
        db: StateDB,
        lake_store: ObjectStore,
        notifications: Notifications,
        clock_now: Callable[[], dt.datetime],
    ):
        self.engine = IncidentEngine(db, artefacts=runbook_store(lake_store))
        self.lake_store = lake_store
        self.notifications = notifications
        self._now = clock_now

    # -- communications --------------------------------------------------------------------------
    def on_give_up(self, entry: OutboxEntry) -> None:
        """The delivery worker gave up on a message: say so on the incident's timeline."""
        note_on_timeline(self.engine.store, self._now)(entry)

    def brief(self, incident: Incident, run_id: str | None = None, **brief_fields) -> IncidentBrief:
        return IncidentBrief(
            incident_id=incident.id,
            markets=incident.scope.markets or (incident.market,),
            cause=incident.cause,
            summary=incident.description,
            links=self.notifications.config.links(incident_dir(incident), run_id),
            **brief_fields,
        )

    def post(self, messages: Sequence[Message]) -> list[OutboxEntry]:
        return self.notifications.post(messages)

    def communicate(self, stage: Stage, incident: Incident, run_id: str | None = None, **brief_fields):
        """Post the runbook's messages of ``stage`` for ``incident`` (returns the outbox rows)."""
        return self.post(messages_for(stage, self.brief(incident, run_id, **brief_fields)))

    def _kill_switch_notice(self, incident: Incident) -> None:
        frozen = sorted(
            f"strategy promotions on {market}"
            for market, toggle in self.engine.control.holds_of(incident.id)
            if toggle == STRATEGY_PROMOTIONS
        )
        if frozen:
            self.post([kill_switch_notice(self.brief(incident), frozen)])

    # -- stages ----------------------------------------------------------------------------------
    def detect(
        self,
        cause: str,
        market: str,
        *,
        now: dt.datetime,
        sessions: Sequence[str] = (),
        symbols: Sequence[str] = (),
        windows: Sequence[TimeWindow] = (),
        gaps: Sequence[GapWindow] = (),
        description: str = "",
        data: dict | None = None,
        eta: dt.datetime | None = None,
    ) -> tuple[Incident, bool]:
        incident, opened = self.engine.detect(
            cause, market, now=now, sessions=sessions, symbols=symbols, windows=windows, gaps=gaps,
            description=description, data=data,
        )
        if opened:
            for session in incident.scope.sessions:
                if snapshot_baseline(self.lake_store, incident.id, market, dt.date.fromisoformat(session)):
                    self.engine.store.add_baseline(
                        incident.id, market=market, indicator="all", reference=f"baselines/{incident.id}", now=now
                    )
            run_id = (data or {}).get("run_id")
            self.communicate(Stage.DETECTION, incident, run_id)
            self.communicate(Stage.CONTAINMENT, incident, eta=eta or now + dt.timedelta(hours=1))
            self._kill_switch_notice(incident)
        return incident, opened

    def start_recovery(
        self, incident: Incident, *, now: dt.datetime, start, end, message: str, run_id: str | None = None
    ) -> Incident:
        """``recovering``, the recovery-start message and the PagerDuty acknowledge, once: sensors call this
        on every tick that (re)requests a backfill, and the runs themselves are on the Runs page."""
        if self.engine.store.get(incident.id).state is IncidentState.RECOVERING:
            return incident
        incident = self.engine.start_recovery(incident.id, now=now, message=message)
        self.communicate(Stage.RECOVERY_START, incident, run_id, range_start=start, range_end=end)
        return incident

    def evaluate(self, incident_id: str, evidence: ec.ExitEvidence,
                 incident: Incident | None = None) -> ec.ExitEvaluation:
        """``IncidentEngine.evaluate`` and the validation-pass message when it moved the incident to
        ``validating``. ``incident``: as the caller just read it (a sensor's bulk read); by default, read
        here."""
        before = incident if incident is not None else self.engine.store.get(incident_id)
        evaluation = self.engine.evaluate(incident_id, evidence, incident=before)
        # only an evaluation whose automatic criteria hold moves an incident to validating: no read otherwise
        if before.state is not IncidentState.VALIDATING and evaluation.automatic_met:
            after = self.engine.store.get(incident_id)
            if after.state is IncidentState.VALIDATING:
                self.communicate(Stage.VALIDATION_PASS, after)
        return evaluation

    def resolve(self, incident_id: str, *, now: dt.datetime, root_cause: str, owners, actions, force=False):
        """Resolve (see ``IncidentEngine.resolve``), then post the post-mortem notice, and the PagerDuty resolve
        unless the validation pass already posted it: every resolution closes the page, forced ones included,
        and the page gets one resolve."""
        incident = self.engine.resolve(
            incident_id, now=now, root_cause=root_cause, owners=owners, actions=actions, force=force
        )
        brief = self.brief(incident, postmortem_path=f"{incident_dir(incident)}/postmortem.md")
        messages = messages_for(Stage.POSTMORTEM_READY, brief)
        posted = self.notifications.outbox.list(incident_id=incident.id, limit=10_000)
        if not any(e.channel == "pagerduty" and e.event_action == "resolve" for e in posted):
            messages.append(pagerduty_resolve(brief))
        self.post(messages)
        return incident


def responder_from_settings(settings, clock_now: Callable[[], dt.datetime]) -> Responder:
    """The responder the CLI uses: the same state DB, lake and notification outbox as the code location."""
    from tradepulse_assets.storage.object_store import object_store_from_url

    db = StateDB(settings.state_db_url)
    return Responder(
        db,
        object_store_from_url(settings.object_store_url, s3=settings.s3),
        notifications_for(db, settings.outbox_path, clock=clock_now),
        clock_now,
    )
