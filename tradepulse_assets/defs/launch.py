"""Run one market session as a real Dagster run from outside the daemon (the CLI, tools); read its outcome.

Why here and not in the CLI: a backfill from the command line must be the same thing as a sensor's backfill:
the same job, tags and asset checks, recorded on the instance (materialisations and checks in the UI), holding
the same per-session lease (taken by the assets themselves) and reconciling the same incident. The CLI only
chooses sessions and writes the report.
"""

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg

from tradepulse_assets.defs.assets.bars import ATTEMPT_TAG, INCIDENT_TAG, MARKET_TAG
from tradepulse_assets.defs.jobs import ingest_job_name
from tradepulse_assets.defs.partitions import key_of_session
from tradepulse_assets.markets import Market
from tradepulse_assets.pipeline import decisions, ingest
from tradepulse_assets.pipeline.ingest import LANDING_GATE
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.storage.object_store import ObjectStore
from tradepulse_assets.storage.state import StateDB

LAUNCHED_BY_TAG = "tradepulse/launched_by"


@dataclass
class SessionRun:
    market: str
    session: dt.date
    verdict: str
    run_id: str | None = None
    detail: str = ""
    record: dict = field(default_factory=dict)


def _failure_messages(result) -> list[str]:
    messages = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            user = data.user_failure_data
            if user and user.description:
                messages.append(user.description)
            elif data.error:
                messages.append(data.error.message)
    return [m for m in messages if m]


def run_session(defs: dg.Definitions, instance: dg.DagsterInstance, market: Market, session: dt.date,
                *, incident_id: str | None, launched_by: str, store: ObjectStore, db: StateDB) -> SessionRun:
    """Run the market's ingestion job for ``session`` on ``instance`` and classify what happened."""
    manifest = None
    try:
        vendor = defs.resources["vendor"].process_config_and_initialize()  # resolves its EnvVars, as a run does
        manifest = vendor.connector().read_manifest(market.market_id, session)
    except Exception as exc:  # noqa: BLE001 - a vendor outage is this session's outcome, not the range's end
        return SessionRun(market.market_id, session, "not_published", detail=f"vendor: {exc}")
    if manifest is None or manifest.condition not in decisions.PUBLISHED_CONDITIONS:
        why = "nothing published" if manifest is None else f"vendor condition {manifest.condition!r}"
        return SessionRun(market.market_id, session, "not_published", detail=why)
    held = SessionLedger(db).held_revision(market.market_id, session)
    allowed, why = decisions.revision_verdict(manifest.revision, None, held.revision if held else None, None)
    if not allowed:
        return SessionRun(market.market_id, session, "refused", detail=why)
    tags = {MARKET_TAG: market.market_id, LAUNCHED_BY_TAG: launched_by,
            ATTEMPT_TAG: decisions.attempt_key(market.market_id, session, manifest.revision, None)}
    if incident_id:
        tags[INCIDENT_TAG] = incident_id
    job = defs.resolve_job_def(ingest_job_name(market))
    result = job.execute_in_process(instance=instance, partition_key=key_of_session(session), tags=tags,
                                    raise_on_error=False)
    failures = _failure_messages(result)
    checks = [e for e in result.get_asset_check_evaluations() if not e.passed
              and e.severity == dg.AssetCheckSeverity.ERROR]
    receipt = ingest.read_receipt(store, market.market_id, session) or {}
    record = {"market": market.market_id, "session": session.isoformat(), "run_id": result.run_id,
              "revision": receipt.get("revision"), "digest": receipt.get("delivery"),
              "rows": None, "vendor_rows": receipt.get("vendor_total"), "checksums_ok": receipt.get("ok"),
              "failed_gates": [c.check_name for c in checks if c.check_name != LANDING_GATE],
              "faults": receipt.get("faults", [])}
    reconciled = None
    if result.success:
        made = [e.materialization for e in result.get_asset_materialization_events()]
        rows = next((m.metadata["rows"].value for m in made
                     if m.asset_key.path[-1] == "production_bars" and "rows" in m.metadata), None)
        record["rows"] = rows
        reconciled = rows is not None and rows == receipt.get("vendor_total") and bool(receipt.get("ok"))
    verdict = decisions.session_outcome(
        run_success=result.success,
        refused=any(m.startswith("refused") or "promotion refused" in m for m in failures),
        not_published=any("published" in m and "vendor" in m for m in failures),
        landing_failed=any(c.check_name == LANDING_GATE for c in checks),
        failed_gates=record["failed_gates"], reconciled=reconciled,
    )
    record["verdict"] = verdict
    return SessionRun(market.market_id, session, verdict, result.run_id, "; ".join(failures)[:500], record)
