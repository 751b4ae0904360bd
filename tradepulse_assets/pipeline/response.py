"""The runbook's response with its communications: the incident engine plus the five-stage messages.

``IncidentEngine`` (incidents layer) owns state, containment and artefacts; this wrapper adds what needs
other layers: baselines of the affected features (lake) when an incident opens, and the communication
plan sent through the notifiers at each stage. A failed notification goes on the timeline and never
stops recovery.
"""

import datetime as dt
from collections.abc import Callable, Sequence

from tradepulse_assets.incidents import exit_criteria as ec
from tradepulse_assets.incidents.communications import IncidentBrief, Stage, messages_for
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.model import GapWindow, Incident, IncidentState, TimeWindow
from tradepulse_assets.incidents.notifiers import Delivery, Dispatcher, FailureHandler, Message
from tradepulse_assets.incidents.reports import incident_dir
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.pipeline.features import snapshot_baseline
from tradepulse_assets.storage.object_store import ObjectStore
from tradepulse_assets.storage.state import StateDB


def open_incident_covering(store: IncidentStore, market_id: str, session: dt.date) -> Incident | None:
    """The newest open incident whose scope includes this market session: one fault, one incident,
    whichever sensor saw it first (a corrupted delivery is also late)."""
    for incident in store.list(market=market_id, open_only=True):
        if session.isoformat() in incident.scope.sessions:
            return incident
    return None


class Responder:
    """``make_dispatcher(on_failure)`` builds the notifiers; ``clock_now`` stamps notification failures."""

    def __init__(
        self,
        db: StateDB,
        lake_store: ObjectStore,
        make_dispatcher: Callable[[FailureHandler], Dispatcher],
        clock_now: Callable[[], dt.datetime],
    ):
        self.engine = IncidentEngine(db)
        self.lake_store = lake_store
        self._dispatcher = make_dispatcher(self._on_failure)
        self._now = clock_now

    # -- communications --------------------------------------------------------------------------
    def _on_failure(self, message: Message, delivery: Delivery) -> None:
        now = self._now()
        self.engine.store.add_event(
            message.incident_id,
            "notification_failed",
            f"{message.stage.value} via {delivery.notifier} failed after {delivery.attempts} attempt(s): "
            f"{delivery.error}",
            now=now,
        )

    def communicate(self, stage: Stage, incident: Incident, **brief_fields) -> list[Delivery]:
        brief = IncidentBrief(
            incident_id=incident.id,
            markets=incident.scope.markets or (incident.market,),
            cause=incident.cause,
            summary=incident.description,
            **brief_fields,
        )
        return self._dispatcher.dispatch(messages_for(stage, brief))

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
            self.communicate(Stage.DETECTION, incident)
            self.communicate(Stage.CONTAINMENT, incident, eta=eta or now + dt.timedelta(hours=1))
        return incident, opened

    def start_recovery(self, incident: Incident, *, now: dt.datetime, start, end, message: str) -> Incident:
        """``recovering`` and the recovery-start message, once: sensors call this on every tick that
        (re)requests a backfill, and the runs themselves are on the Runs page."""
        if self.engine.store.get(incident.id).state is IncidentState.RECOVERING:
            return incident
        incident = self.engine.start_recovery(incident.id, now=now, message=message)
        self.communicate(Stage.RECOVERY_START, incident, range_start=start, range_end=end)
        return incident

    def evaluate(self, incident_id: str, evidence: ec.ExitEvidence) -> ec.ExitEvaluation:
        before = self.engine.store.get(incident_id).state
        evaluation = self.engine.evaluate(incident_id, evidence)
        after = self.engine.store.get(incident_id)
        if before is not IncidentState.VALIDATING and after.state is IncidentState.VALIDATING:
            self.communicate(Stage.VALIDATION_PASS, after)
        return evaluation

    def resolve(self, incident_id: str, *, now: dt.datetime, root_cause: str, owners, actions, force=False):
        incident = self.engine.resolve(
            incident_id, now=now, root_cause=root_cause, owners=owners, actions=actions, force=force
        )
        self.communicate(Stage.POSTMORTEM_READY, incident, postmortem_path=f"{incident_dir(incident)}/postmortem.md")
        return incident


def responder_from_settings(settings, clock_now: Callable[[], dt.datetime]) -> Responder:
    """The responder the CLI uses: the same state DB, lake and notifiers as the code location."""
    import os

    from tradepulse_assets.incidents.notifiers import dispatcher_from_env
    from tradepulse_assets.storage.object_store import object_store_from_url

    return Responder(
        StateDB(settings.state_db_url),
        object_store_from_url(settings.object_store_url, s3=settings.s3),
        lambda on_failure: dispatcher_from_env(dict(os.environ), settings.outbox_path, on_failure=on_failure),
        clock_now,
    )
