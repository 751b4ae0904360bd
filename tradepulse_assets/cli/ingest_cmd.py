"""``tradepulse-cli ingest``: backfill gap windows, reseed a connector, run the streaming ingestor (runbook 3.1,
3.2), and release or discard quarantined batches (runbook 2)."""

import datetime as dt
import getpass
import json
import os
import re
import signal
import time
from pathlib import Path

from tradepulse_assets.cli.markets import registered_market
from tradepulse_assets.cli.output import CliError, Progress, emit, iso_day, table
from tradepulse_assets.markets import calendar_for
from tradepulse_assets.pipeline import ingest, quarantine
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.pipeline.stream import (
    compact_promoted_sessions,
    landed_watermark,
    poll_stream,
    stream_watermark_name,
)
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import audit_log_for
from tradepulse_assets.storage.object_store import object_store_from_url
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets.core.clock import parse_clock
from tradepulse_assets.core.environment import is_set, read
from tradepulse_assets.feeds.connectors import VendorError
from tradepulse_assets.feeds.sources import connector_for

def add_commands(sub, common) -> None:
    p = sub.add_parser("backfill", help="run a market's sessions in a window as Dagster runs",
                       parents=[common])
    p.add_argument("--market", required=True)
    p.add_argument("--start", required=True, type=iso_day, help="ISO date or datetime (UTC)")
    p.add_argument("--end", required=True, type=iso_day, help="ISO date or datetime (UTC)")
    p.add_argument("--output", required=True, help="report folder, e.g. reports/backfill/<incident_id>/")
    p.set_defaults(handler=_backfill)

    p = sub.add_parser("reseed", help="check connectivity, reset the stream watermark, restart ingestion",
                       parents=[common])
    p.add_argument("--market", required=True)
    p.set_defaults(handler=_reseed)

    p = sub.add_parser("quarantine", help="list, release or discard quarantined batches", parents=[common])
    q = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = q.add_parser("list", help="quarantined batches with their status", parents=[common])
    listing.add_argument("--incident", help="only this incident's batches")
    listing.set_defaults(handler=_quarantine_list)
    for action, help_text in (("release", "the vendor fixed it: mark released (the sensors re-ingest the session)"),
                              ("discard", "mark discarded (kept, never re-ingested)")):
        a = q.add_parser(action, help=help_text, parents=[common])
        a.add_argument("batch", help="<incident id>.<batch id>, as `ingest quarantine list` shows")
        a.add_argument("--reason", required=True)
        a.add_argument("--by", default=getpass.getuser(), help="who decides (default: your login name)")
        a.set_defaults(handler=_quarantine_status, status="released" if action == "release" else "discarded")

    p = sub.add_parser("stream", help="land minute micro-batches of a streaming market as they arrive",
                       parents=[common])
    p.add_argument("--market", required=True)
    p.add_argument("--poll-seconds", type=float, default=5.0)
    p.add_argument("--once", action="store_true", help="one poll (and one compaction pass), then exit")
    p.add_argument("--compact-seconds", type=float, default=60.0,
                   help="how often landed sessions' micro-batches are compacted into one object")
    p.set_defaults(handler=_stream)


def _connector(settings):
    return connector_for(settings.vendor_source, s3_endpoint_url=settings.s3_endpoint_url)


def _day(text: str) -> dt.date:
    return dt.datetime.fromisoformat(text).date() if "T" in text else dt.date.fromisoformat(text)


def _dagster_instance(settings):
    """The Dagster instance the platform runs on: ``$DAGSTER_HOME``, else the embedded profile's
    ``$TRADEPULSE_HOME/dagster`` (what ``make run`` uses)."""
    import dagster as dg

    home = read("DAGSTER_HOME") or str(Path(settings.home) / "dagster")
    if not (Path(home) / "dagster.yaml").exists() and not is_set("DAGSTER_HOME"):
        raise CliError(f"no Dagster instance at {home}",
                       hint="set DAGSTER_HOME to the daemon's instance (make run: $TRADEPULSE_HOME/dagster)")
    Path(home).mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = home
    return dg.DagsterInstance.get()


INCIDENT_ID = re.compile(r"^INC-\d{8}-\d{4}$")


def _incident_of_output(output: Path, db) -> str | None:
    """``reports/backfill/<incident_id>/`` links the backfill to that incident (when it exists)."""
    from tradepulse_assets.incidents.store import IncidentNotFound, IncidentStore

    for part in reversed(output.parts):
        if INCIDENT_ID.match(part):
            try:
                return IncidentStore(db).get(part).id
            except IncidentNotFound:
                raise CliError(f"--output names incident {part}, which does not exist",
                               hint="tradepulse-cli incident list shows the incidents") from None
    return None


def _backfill(args) -> int:
    """Every session of the range runs as a real Dagster run of the market's ingestion job (same tags, checks
    and per-session lease as a sensor's backfill); each outcome is recorded; the summary is always written; the
    exit code is the worst outcome (0 all reconciled, 1 some not reconciled, 2 a session refused or failed)."""
    from tradepulse_assets.defs.definitions import build_definitions
    from tradepulse_assets.defs.launch import SessionRun, run_session
    from tradepulse_assets.markets import load_registry
    from tradepulse_assets.pipeline.decisions import worst_outcome

    market = registered_market(args.market)
    settings = load_settings()
    store = object_store_from_url(settings.object_store_url, s3=settings.s3)
    db = StateDB(settings.state_db_url)
    sessions = calendar_for(market.market_id, market.calendar).sessions(_day(args.start), _day(args.end))
    if not sessions:
        raise CliError(f"no {market.market_id} session between {args.start} and {args.end}")
    output = Path(args.output)
    incident_id = _incident_of_output(output, db)
    instance = _dagster_instance(settings)
    defs = build_definitions(load_registry(), settings)
    output.mkdir(parents=True, exist_ok=True)
    progress = Progress(args, len(sessions), f"backfill {market.market_id}")
    runs: list[SessionRun] = []
    try:
        for session in sessions:
            try:
                run = run_session(defs, instance, market, session, incident_id=incident_id, launched_by="cli",
                                  store=store, db=db)
            except Exception as exc:  # noqa: BLE001 - one session's crash is its outcome; the range goes on
                run = SessionRun(market.market_id, session, "failed", detail=f"{type(exc).__name__}: {exc}")
            runs.append(run)
            record = {**run.record, "market": run.market, "session": str(session), "verdict": run.verdict,
                      "run_id": run.run_id, "detail": run.detail, "incident_id": incident_id}
            (output / f"{market.market_id}-{session}.json").write_bytes(ingest.dumps(record))
            progress.step(str(session), run.verdict)
    finally:
        rows = [{"session": r.session, "verdict": r.verdict, "run_id": r.run_id, "rows": r.record.get("rows"),
                 "vendor_rows": r.record.get("vendor_rows"), "detail": r.detail[:120]} for r in runs]
        missing = [s for s in sessions if s not in {r.session for r in runs}]
        rows += [{"session": s, "verdict": "not_run", "run_id": None, "rows": None, "vendor_rows": None,
                  "detail": "interrupted before this session"} for s in missing]
        exit_code = worst_outcome([r["verdict"] for r in rows])
        summary = {"market": market.market_id, "output": str(output), "incident_id": incident_id,
                   "partitions": rows, "reconciled": sum(r["verdict"] == "reconciled" for r in rows),
                   "exit_code": exit_code}
        (output / "summary.json").write_text(json.dumps(summary, default=str, indent=2, sort_keys=True))
    emit(args, summary, table(rows) + f"\n{summary['reconciled']}/{len(rows)} partition(s) reconciled; "
         f"reports in {output}")
    return exit_code


def _reseed(args) -> int:
    """Runbook 3.1: validate connectivity and credentials, rebuild the watermark from what was really landed,
    restart ingestion with one poll, and record the restart in the audit trail."""
    market = registered_market(args.market)
    settings = load_settings()
    clock = parse_clock(settings.clock)
    connector = _connector(settings)
    try:
        connector.check_connectivity()
    except VendorError as exc:
        raise CliError(f"{market.market_id}: vendor connectivity failed: {exc}",
                       hint="check TRADEPULSE_VENDOR_SOURCE and TRADEPULSE_VENDOR_TOKEN") from None
    now = clock.now()
    store = object_store_from_url(settings.object_store_url, s3=settings.s3)
    db = StateDB(settings.state_db_url)
    audit = audit_log_for(store, db, clock=clock.now)
    name = stream_watermark_name(market.market_id)
    previous = db.get_watermark(name)
    rebuilt = landed_watermark(store, market.market_id)
    if rebuilt is not None:
        db.set_watermark(name, rebuilt, now=now)
    landed = poll_stream(market, connector, store, db, audit, now) if market.is_streaming else 0
    current = db.get_watermark(name)
    audit.append({
        "event": "reseed", "market": market.market_id, "session": str(now.date()), "batch": "-", "rows": 0,
        "sha256": "0" * 64, "outcome": f"restarted: watermark {previous} -> {current}, {landed} micro-batch(es)",
    })
    payload = {"market": market.market_id, "previous_watermark": previous, "watermark": current, "landed": landed}
    emit(args, payload, f"{market.market_id}: connectivity ok; watermark {previous} -> {current}; {landed} "
         "micro-batch(es) landed; restart recorded in the audit trail")
    return 0


def _quarantine_list(args) -> int:
    settings = load_settings()
    store = object_store_from_url(settings.object_store_url, s3=settings.s3)
    rows = []
    for incident_id, batch_id in lake.list_quarantine_batches(store, args.incident):
        reason = lake.read_quarantine_reason(store, incident_id, batch_id)
        rows.append({"batch": quarantine.partition_key_for(incident_id, batch_id), "market": reason.get("market"),
                     "session": reason.get("session"), "status": reason.get("status", "quarantined"),
                     "files": len(reason.get("files", [])), "reason": reason.get("reason", "")[:80]})
    emit(args, {"batches": rows}, table(rows))
    return 0


def _quarantine_status(args) -> int:
    settings = load_settings()
    store = object_store_from_url(settings.object_store_url, s3=settings.s3)
    try:
        clock = parse_clock(settings.clock)
        db = StateDB(settings.state_db_url)
        document = quarantine.set_batch_status(store, db, args.batch, args.status, args.reason, clock.now(),
                                               args.by, audit=audit_log_for(store, db, clock=clock.now))
    except quarantine.QuarantineError as exc:
        raise CliError(str(exc), hint="tradepulse-cli ingest quarantine list shows the batches") from None
    emit(args, document, f"{args.batch}: {args.status} by {args.by} ({args.reason}); recorded on the incident")
    return 0


def _stream(args) -> int:
    market = registered_market(args.market)
    if not market.is_streaming:
        raise CliError(f"{market.market_id} is a batch market", hint="batch sessions are landed by Dagster")
    settings = load_settings()
    clock = parse_clock(settings.clock)
    store = object_store_from_url(settings.object_store_url, s3=settings.s3)
    db = StateDB(settings.state_db_url)
    audit = audit_log_for(store, db, clock=clock.now)
    connector = _connector(settings)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    holder, compacted_at = f"ingestor:{market.market_id}:{os.getpid()}", None
    while not stop:
        try:
            landed = poll_stream(market, connector, store, db, audit, clock.now())
            if landed and not args.json:
                print(f"{clock.now():%H:%M:%S} {market.market_id}: landed {landed} micro-batch(es), "
                      f"watermark {db.get_watermark(stream_watermark_name(market.market_id))}", flush=True)
        except VendorError as exc:
            print(f"{market.market_id}: vendor error, retrying: {exc}", flush=True)
        if compacted_at is None or time.monotonic() - compacted_at >= args.compact_seconds:
            compacted_at = time.monotonic()
            for session, count in compact_promoted_sessions(store, db, market.market_id, holder).items():
                if not args.json:
                    print(f"{market.market_id} {session}: {count} micro-batch(es) compacted into one object",
                          flush=True)
        if args.once:
            break
        time.sleep(args.poll_seconds)
    return 0
