"""Per-market bar assets: landed -> staging -> production, with the quality gates as asset checks.

Wiring only: the steps are ``pipeline.ingest``; the gates are ``quality.gates``. The landing check and the
blocking quality gates are declared on the assets (``check_specs``), so a failing gate fails the run and
skips promotion, and the failure sensor opens the incident and quarantines the batch.

Many sessions at once (a backfill) run as ranges of ``RANGE_SESSIONS`` sessions per run: the first bar step of
a range run takes each session through every stage on its own and records its events per session
(``run_session_range``; why, in docs/production.md "Backfills as ranges").
"""

import datetime as dt
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from tradepulse_assets.defs.dagster_internals import CheckTarget, event_log_files_held_open
from tradepulse_assets.defs.assets.vendor_manifests import vendor_manifests_key
from tradepulse_assets.defs.partitions import session_of_key, session_partitions
from tradepulse_assets.defs.resources import (
    ClockResource,
    NotificationsResource,
    ObjectStoreResource,
    StateResource,
    VendorResource,
)
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import Market
from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS
from tradepulse_assets.pipeline import decisions, ingest
from tradepulse_assets.pipeline.ownership import AlreadyLanded, LeaseHeld, RevisionRefused, SessionLedger
from tradepulse_assets.pipeline.response import Responder, open_incident_covering
from tradepulse_assets.pipeline.stream import LandedStreamConnector
from tradepulse_assets.quality import GATE_NAMES, GateConfig, GateResult, config_for_market, gate_is_blocking
from tradepulse_assets.quality.catalog import health_catalog_for
from tradepulse_assets.storage.audit import audit_log_for
from tradepulse_assets.storage.object_store import runbook_store

MARKET_TAG = "tradepulse/market"
GATE_CONFIG = GateConfig()
INCIDENT_TAG = "tradepulse/incident"
ATTEMPT_TAG = "tradepulse/attempt"  # decisions.attempt_key: one landing attempt, whoever launched it
# A run waits this long for another run of the same session (e.g. a UI launch racing a sensor) to finish.
LEASE_WAIT = dt.timedelta(minutes=10)


def run_holder(run_id: str) -> str:
    return f"run:{run_id}"


def holder_is_alive(instance: dg.DagsterInstance):
    """A run-held lease ends with its run (a run that failed after landing holds nothing)."""

    def alive(holder: str) -> bool:
        if not holder.startswith("run:"):
            return True  # another kind of holder (a tool): its expiry decides
        run = instance.get_run_by_id(holder[len("run:"):])
        return run is not None and not run.is_finished

    return alive


def session_incident(db, run_tags, market_id: str, session) -> str | None:
    """The incident a run of this session reports into (any launcher: sensor, UI, CLI)."""
    covering = open_incident_covering(IncidentStore(db), market_id, session)
    return decisions.attach_incident(run_tags.get(INCIDENT_TAG), covering.id if covering else None)


def announce_recovery_start(responder: Responder, incident_id: str, market_id: str, session, now,
                            run_id: str | None = None) -> None:
    """"Backfill initiated" goes out when a run of the incident starts, once (not when a sensor asks for one);
    ``run_id`` links the message and the PagerDuty acknowledge to the run."""
    incident = responder.engine.store.get(incident_id)
    if decisions.backfill_started_stage(True, incident.state.value):
        responder.start_recovery(incident, now=now, start=session, end=session,
                                 message=f"backfill of {market_id} {session} started", run_id=run_id)


PUBLICATION_SENSOR_SUFFIX = "_publication_sensor"


def is_delivery_run(tags: dict[str, str]) -> bool:
    """Whether a run is the vendor delivery path (the publication sensor landing a new session), the only path
    whose lateness the freshness gate judges. Incident backfills, the seed, the CLI and a person's launch
    from the UI fill a gap: their freshness passes and reports whether the session was late."""
    sensor = tags.get("dagster/sensor_name", "")
    return sensor.endswith(PUBLICATION_SENSOR_SUFFIX) and INCIDENT_TAG not in tags


def market_key(market: Market, name: str) -> dg.AssetKey:
    return dg.AssetKey([market.market_id.lower(), name])


@functools.cache
def bar_column_schema() -> dg.TableSchema:
    """The bar schema as Dagster shows columns: the same names, types and nullability as ``BarSchema``.

    Built from the column dictionaries the pandera model is declared against, not through dagster-pandera:
    importing pandera (and pandas) cost most of a second of every code-location load for this one table.
    """
    columns = [(name, dtype, False) for name, dtype in BAR_COLUMNS.items()]
    columns += [(name, dtype, True) for name, dtype in OPTIONAL_BAR_COLUMNS.items()]
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name, type=str(dtype), constraints=dg.TableColumnConstraints(nullable=nullable)
            )
            for name, dtype, nullable in columns
        ]
    )


def session_check_spec(
    name: str, asset: dg.AssetKey, partitions: dg.PartitionsDefinition, blocking: bool, description: str
) -> dg.AssetCheckSpec:
    """A check evaluated per session partition.

    Deliberately partitioned (a Preview API in Dagster 1.13): without ``partitions_def`` the evaluation
    recorded for a check yielded from a partitioned asset carries no partition, and the exit criteria could
    not ask "did the gates pass on *this* session". The Preview warning is silenced here, for this one use.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*", category=dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, blocking=blocking, partitions_def=partitions, description=description)


def health_markdown(results: list[GateResult]) -> str:
    """The session's row of the health catalog, as a table a person reads on the asset page."""
    lines = ["| gate | verdict | blocking | summary |", "| --- | --- | --- | --- |"]
    for r in results:
        verdict = "pass" if r.passed else ("**FAIL**" if r.blocking else "warn")
        lines.append(f"| {r.gate} | {verdict} | {'yes' if r.blocking else 'no'} | {r.summary.replace('|', '/')} |")
    return "\n".join(lines) + "\n\nQuery every session: `observability/catalog/data_health` (docs/quality-gates.md)."


def _check_fields(result: GateResult) -> dict:
    return dict(
        check_name=result.gate,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN,
        description=result.summary,
        metadata=result.to_metadata(),
    )


def check_result(result: GateResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**_check_fields(result))


def check_evaluation(asset: dg.AssetKey, result: GateResult, partition_key: str,
                     target: dg.EventLogRecord | None) -> dg.AssetCheckEvaluation:
    """A gate's verdict on one session of a range run, as Dagster records an ``AssetCheckResult`` of a
    single-session run (``AssetCheckResult`` would attribute it to the run's one partition key)."""
    return dg.AssetCheckEvaluation(
        asset_key=asset, blocking=result.blocking, partition=partition_key, **_check_fields(result),
        target_materialization_data=target and CheckTarget(
            storage_id=target.storage_id, run_id=target.run_id, timestamp=target.timestamp),
    )


#: Sessions per run when many sessions move at once (a UI or daemon backfill): one run's fixed cost
#: (about a second of event-log writes) is then shared by this many sessions instead of paid by each.
RANGE_SESSIONS = 25
SESSION_RANGE_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=RANGE_SESSIONS)
# ``backfill_policy`` on ``@asset`` is Beta in Dagster 1.13 and warns at every code-location load: used on
# purpose.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`",
                        category=dg.BetaWarning)


@dataclass
class StageOutcome:
    """What one bar stage did to one session: the materialisation's metadata (None: nothing to record, e.g.
    another run landed the delivery) and the gate verdicts it evaluated."""

    metadata: dict | None
    results: list[GateResult] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return any(r.blocking and not r.passed for r in self.results)

    @property
    def proceeds(self) -> bool:
        """Whether the session goes on to the next stage (what Dagster decides between the steps of a
        single-session run: an output was recorded and no blocking check failed)."""
        return self.metadata is not None and not self.blocked

    def single_session_events(self):
        """The step's events in a single-session run: Dagster attributes them to the run's partition."""
        if self.metadata is None:
            yield from (check_result(r) for r in self.results)  # nothing recorded: the steps after skip
        else:
            checks = [check_result(r) for r in self.results]
            yield dg.MaterializeResult(metadata=self.metadata, check_results=checks)


def run_session_range(context: dg.AssetExecutionContext, market_id: str, ledger: SessionLedger,
                      stages: list[tuple[dg.AssetKey, Callable[[dt.date], StageOutcome]]]):
    """A range run's work, done by its first bar step: each session of the range goes through ``stages`` (the
    run's selected bar stages from this step on, each ``session -> StageOutcome``) on its own, and its
    materialisations and check verdicts are recorded for that session alone.

    Why one step does every stage: a range step's output is recorded as a materialisation of *every* session
    in the range (a session that failed its gate too), and a step that records none makes Dagster skip every
    step after it for the whole range. So this step yields no asset output (the later bar steps are skipped)
    and records per-session events instead; a bad session stops only itself. When any session stopped on a
    failed blocking gate or a refusal, the step fails after the whole range, so the run is failed (the
    quality-failure sensor reads the failed checks per session) and the UI shows those sessions as failed
    and the others as materialised.
    """
    stopped = {}
    # Each session writes about 24 events (~70 SQLite transactions in the embedded profile): keep the event
    # log's files open meanwhile, so each write does not also checkpoint and delete the log (why, there).
    with event_log_files_held_open(context.instance, context.run.run_id):
        for partition_key in context.partition_keys:
            session = session_of_key(partition_key)
            try:
                for asset, stage in stages:
                    outcome = stage(session)
                    target = None
                    if outcome.metadata is not None:
                        yield dg.AssetMaterialization(asset_key=asset, partition=partition_key,
                                                      metadata=outcome.metadata)
                        if outcome.results:  # verdicts point at it (production bars have none to attach)
                            target = _latest_materialization(context.instance, asset, partition_key)
                    yield from (check_evaluation(asset, r, partition_key, target) for r in outcome.results)
                    if outcome.blocked:
                        stopped[partition_key] = ", ".join(r.gate for r in outcome.results
                                                           if r.blocking and not r.passed)
                    if not outcome.proceeds:
                        break
            except Exception as exc:  # noqa: BLE001 - a refusal or error of this session, not its neighbours'
                why = exc.description if isinstance(exc, dg.Failure) else f"{type(exc).__name__}: {exc}"
                stopped[partition_key] = why
                context.log.error(f"{market_id} {partition_key}: {why}")
            finally:  # a session that stopped early gives its lease back now, not when the range ends
                ledger.release(market_id, session, run_holder(context.run.run_id))
    for check in context.selected_asset_check_keys:  # their verdicts went out per session above
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check))
    if stopped:
        raise dg.Failure(
            description=f"{len(stopped)} of {len(context.partition_keys)} sessions stopped: "
            + "; ".join(f"{k}: {why}" for k, why in stopped.items()),
            metadata={"stopped_sessions": dg.MetadataValue.json(stopped)},
        )


def _latest_materialization(instance: dg.DagsterInstance, asset: dg.AssetKey, partition_key: str):
    found = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition_key]), limit=1
    ).records
    return found[0] if found else None


def is_range_run(context: dg.AssetExecutionContext) -> bool:
    return context.has_partition_key_range and len(context.partition_keys) > 1


def build_bar_assets(market: Market) -> list[dg.AssetsDefinition]:
    partitions = session_partitions(market)
    gate_config = config_for_market(market, GATE_CONFIG)  # the market's universe policy decides that gate
    group = market.market_id.lower()
    landed_key, staging_key, production_key = (
        market_key(market, n) for n in ("landed_bars", "staging_bars", "production_bars")
    )
    # What every bar asset of this market shares: its sessions, group, column schema, kinds and market tag.
    common = dict(
        partitions_def=partitions,
        group_name=group,
        metadata={"dagster/column_schema": bar_column_schema()},
        kinds={"polars", "parquet"},
        op_tags={MARKET_TAG: market.market_id},
        # Many sessions at once run as ranges (run_session_range); a step that records nothing for its session
        # (landing overtaken by another run, every step of a range but the first) yields no output.
        backfill_policy=SESSION_RANGE_POLICY,
        output_required=False,
    )

    def land(context, session, vendor, object_store, clock, state, notifications,
             launched_at: Callable[[], dt.datetime]) -> StageOutcome:
        store = object_store.store()
        connector = vendor.connector()
        if market.is_streaming:  # built from what the streaming ingestor landed, reconciled with the vendor
            connector = LandedStreamConnector(store, connector)
        db = state.db()
        audit = audit_log_for(store, db, clock=clock.clock().now)
        ledger = SessionLedger(db)
        holder = run_holder(context.run.run_id)
        where = {"market": market.market_id, "session": str(session)}
        try:  # one owner per session for the whole land -> stage -> promote, whoever launched the run
            ledger.acquire(market.market_id, session, holder, wait=LEASE_WAIT,
                           is_alive=holder_is_alive(context.instance))
        except LeaseHeld as exc:
            raise dg.Failure(description=str(exc), metadata=where) from None
        incident_id = session_incident(db, context.run.tags, market.market_id, session)
        if incident_id:
            responder = Responder(db, store, notifications.notifications(db, clock.clock().now), clock.clock().now)
            announce_recovery_start(responder, incident_id, market.market_id, session, clock.clock().now(),
                                    run_id=context.run.run_id)
        try:
            outcome = ingest.land_session(
                connector, store, audit, market, session, clock.clock().now(),
                guard=ingest.ledger_guard(ledger, market.market_id, session, launched_at=launched_at()),
            )
        except AlreadyLanded as exc:  # two launches at once: the other run landed it; no second landing
            ledger.release(market.market_id, session, holder)
            context.log.info(f"nothing to land: {exc}")
            return StageOutcome(None, [ingest.already_landed_gate(str(exc))])  # its stages after are skipped
        except ingest.NotPublished as exc:
            ledger.release(market.market_id, session, holder)
            raise dg.Failure(description=str(exc), metadata=where) from None
        except RevisionRefused as exc:
            ledger.release(market.market_id, session, holder)
            raise dg.Failure(description=f"refused: {exc}", metadata={**where, "refused": True}) from None
        gate = ingest.landing_gate(outcome)
        if not gate.passed:
            context.log.error(f"{market.market_id} {session}: {gate.summary}")
        return StageOutcome(outcome.to_metadata(), [gate])

    def stage(context, session, object_store, clock) -> StageOutcome:
        store = object_store.store()
        outcome = ingest.stage_session(
            store, market, session, is_backfill=not is_delivery_run(context.run.tags), config=gate_config
        )
        health_catalog_for(store).write(
            market.market_id, session, outcome.results, evaluated_at=clock.clock().now(), run_id=context.run.run_id
        )
        metadata = {
            "data_health": dg.MetadataValue.md(health_markdown(outcome.results)),
            "rows": outcome.bars.height,
            "symbols": (outcome.bars.get_column("symbol").n_unique()
                        if "symbol" in outcome.bars.columns else 0),
            "blocking_failures": [r.gate for r in outcome.blocking_failures],
            "promotable": outcome.promotable,
        }
        return StageOutcome(metadata, outcome.results)

    def promote(context, session, object_store, state, clock) -> StageOutcome:
        store = object_store.store()
        db = state.db()
        audit = audit_log_for(store, db, clock=clock.clock().now)
        ledger = SessionLedger(db)
        holder = run_holder(context.run.run_id)
        receipt = ingest.read_receipt(store, market.market_id, session) or {}
        revision = int(receipt.get("revision", 0))
        promoted = []
        try:  # the lake write and the revision record change together, under this run's lease
            ledger.acquire(market.market_id, session, holder, wait=LEASE_WAIT,
                           is_alive=holder_is_alive(context.instance))
            ledger.record_promotion(
                market.market_id, session, revision, receipt.get("delivery"), holder,
                promote=lambda: promoted.append(ingest.promote_session(store, market, session, audit)),
            )
        except (LeaseHeld, RevisionRefused) as exc:
            raise dg.Failure(description=f"promotion refused: {exc}",
                             metadata={"market": market.market_id, "session": str(session)}) from None
        finally:
            ledger.release(market.market_id, session, holder)
        rows = promoted[0]
        metadata = {"rows": rows, "session": str(session), "revision": revision}
        incident_id = session_incident(db, context.run.tags, market.market_id, session)
        if incident_id:  # a recovery, whoever launched it: reconcile with vendor totals and checksums
            record = IncidentEngine(db, artefacts=runbook_store(store)).record_backfill(
                incident_id, market.market_id, str(session), rows, int(receipt.get("vendor_total", -1)),
                bool(receipt.get("ok")), now=clock.clock().now(), run_id=context.run.run_id,
                details={"revision": receipt.get("revision"), "raw_prefix": receipt.get("raw_prefix")},
            )
            metadata.update(incident=incident_id, reconciliation=record.verdict)
        return StageOutcome(metadata)

    def bar_stages(context, object_store, clock, state, vendor=None, notifications=None):
        """Every bar stage of a session in order, each ``session -> StageOutcome`` (only landing needs the
        vendor and notifications, so the steps after it pass none)."""
        # the run's creation, read once: every session of a range run shares it
        launched_at = functools.cache(
            lambda: context.instance.get_run_record_by_id(context.run.run_id).create_timestamp)
        return [
            (landed_key,
             lambda s: land(context, s, vendor, object_store, clock, state, notifications, launched_at)),
            (staging_key, lambda s: stage(context, s, object_store, clock)),
            (production_key, lambda s: promote(context, s, object_store, state, clock)),
        ]

    def step_events(key, context, state, stages):
        """The events of ``key``'s step: in a range run, each session through every stage from ``key`` on that
        the run selected (``run_session_range``); otherwise ``key``'s stage on the run's one session."""
        stages = stages[[k for k, _ in stages].index(key):]
        if not is_range_run(context):
            _, first = stages[0]
            yield from first(session_of_key(context.partition_key)).single_session_events()
            return
        selected = context.run.asset_selection
        stages = [(k, stage) for k, stage in stages if selected is None or k in selected]
        yield from run_session_range(context, market.market_id, SessionLedger(state.db()), stages)

    @dg.asset(
        key=landed_key,
        deps=[vendor_manifests_key(market)],
        **common,
        description=(
            f"{market.market_id} one-minute bars as the vendor delivered them for a session: original bytes kept "
            "under landing/raw/, each file verified against the manifest (size, sha256, record count)."
        ),
        check_specs=[
            session_check_spec(
                ingest.LANDING_GATE, landed_key, partitions, blocking=True,
                description="Every file matches the vendor manifest and parses; failures are quarantined.",
            )
        ],
    )
    def landed_bars(
        context: dg.AssetExecutionContext,
        vendor: VendorResource,
        object_store: ObjectStoreResource,
        clock: ClockResource,
        state: StateResource,
        notifications: NotificationsResource,
    ):
        stages = bar_stages(context, object_store, clock, state, vendor, notifications)
        yield from step_events(landed_key, context, state, stages)

    @dg.asset(
        key=staging_key,
        deps=[landed_key],
        **common,
        description=f"{market.market_id} bars normalised and sorted, with every quality gate evaluated.",
        check_specs=[
            session_check_spec(
                gate, staging_key, partitions, blocking=gate_is_blocking(gate, gate_config),
                description=f"Quality gate {gate} (docs/quality-gates.md)",
            )
            for gate in GATE_NAMES
        ],
    )
    def staging_bars(
        context: dg.AssetExecutionContext, object_store: ObjectStoreResource, clock: ClockResource,
        state: StateResource,
    ):
        # in a range run without landed_bars (re-staging) this step is the first and takes the range
        yield from step_events(staging_key, context, state, bar_stages(context, object_store, clock, state))

    @dg.asset(
        key=production_key,
        deps=[staging_key],
        **common,
        description=(
            f"{market.market_id} production bars (the lake): promoted from staging only when every blocking gate "
            "passed. Readable by DuckDB and polars under lake/production/."
        ),
    )
    def production_bars(
        context: dg.AssetExecutionContext, object_store: ObjectStoreResource, state: StateResource,
        clock: ClockResource,
    ):
        # in a range run of production alone (re-promotion) this step takes the range
        stages = bar_stages(context, object_store, clock, state)
        yield from step_events(production_key, context, state, stages)

    return [landed_bars, staging_bars, production_bars]
