"""``tradepulse-cli incident``: open (a user report), list, show, note, resolve.

Why the CLI goes through ``IncidentEngine`` like the sensors do: an incident opened by a person is
contained, timelined and reported exactly like one a sensor opened. The state DB comes from
``$TRADEPULSE_STATE_DB_URL`` (default SQLite under ``$TRADEPULSE_HOME``); artefacts go under
``$TRADEPULSE_HOME``. ``--now`` runs a command on simulated time (chaos replays, tests).
"""

import datetime as dt
import functools

from tradepulse_assets.cli.markets import registered_market
from tradepulse_assets.cli.output import CliError, emit, iso_instant, table
from tradepulse_assets.incidents.exit_criteria import ExitEvaluation
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.model import ExitCriteriaNotMet, IncidentError, IncidentState, TimeWindow
from tradepulse_assets.incidents.reports import incident_dir, render_exit_criteria, render_timeline
from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.pipeline.response import Responder, responder_from_settings
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.storage.object_store import StorageError, object_store_from_url, runbook_store
from tradepulse_assets.storage.state import StateDB, StateDBError
from tradepulse_assets.core.clock import parse_clock

EXIT_CRITERIA_NOT_MET = 3


parse_instant = iso_instant  # an ISO-8601 instant; a naive value is taken as UTC (cli/output.py)


def now_of(args) -> dt.datetime:
    return args.now if getattr(args, "now", None) else parse_clock(load_settings().clock).now()


def engine() -> IncidentEngine:
    """The engine over ``$TRADEPULSE_STATE_DB_URL`` and the registry's markets."""
    try:
        settings = load_settings()
        lake = object_store_from_url(settings.object_store_url, s3=settings.s3)
        return IncidentEngine(StateDB(settings.state_db_url), artefacts=runbook_store(lake),
                              markets=load_registry().ids)
    except StateDBError as exc:
        raise CliError(str(exc), hint="check TRADEPULSE_STATE_DB_URL") from None
    except StorageError as exc:
        raise CliError(str(exc), hint="check TRADEPULSE_OBJECT_STORE_URL") from None


def responder(args) -> Responder:
    """The engine plus baselines and the runbook's communications (opening and resolving notify people)."""
    try:
        return responder_from_settings(load_settings(), lambda: now_of(args))
    except StateDBError as exc:
        raise CliError(str(exc), hint="check TRADEPULSE_STATE_DB_URL") from None
    except StorageError as exc:
        raise CliError(str(exc), hint="check TRADEPULSE_OBJECT_STORE_URL") from None


def domain_errors(handler):
    """Turn the engine's expected failures into one-line CLI errors."""

    @functools.wraps(handler)
    def wrapper(args) -> int:
        try:
            return handler(args)
        except ExitCriteriaNotMet as exc:
            raise CliError(str(exc), hint="re-run after the exit-criteria sensor passes, or add --force "
                           "(recorded on the timeline)", code=EXIT_CRITERIA_NOT_MET) from None
        except IncidentError as exc:
            raise CliError(str(exc)) from None
    return wrapper


def add_now(parser) -> None:
    parser.add_argument("--now", type=parse_instant, help="act at this instant (simulated time; default: the clock)")


def add_commands(sub, common) -> None:
    p = sub.add_parser("open", help="open an incident from a user report", parents=[common])
    p.add_argument("--market", required=True)
    p.add_argument("--start", required=True, type=parse_instant, help="start of the affected range (ISO, UTC)")
    p.add_argument("--end", required=True, type=parse_instant, help="end of the affected range (ISO, UTC)")
    p.add_argument("--description", required=True)
    p.add_argument("--symbol", action="append", default=[], help="affected symbol (repeatable; default all)")
    add_now(p)
    p.set_defaults(handler=_open)

    p = sub.add_parser("list", help="incidents, newest first", parents=[common])
    p.add_argument("--state", choices=[s.value for s in IncidentState])
    p.add_argument("--market")
    p.set_defaults(handler=_list)

    p = sub.add_parser("show", help="an incident with its timeline and last exit-criteria evaluation", parents=[common])
    p.add_argument("incident_id")
    p.set_defaults(handler=_show)

    p = sub.add_parser("note", help="add a note or a vendor reference number", parents=[common])
    p.add_argument("incident_id")
    p.add_argument("--vendor-ref")
    p.add_argument("--text")
    add_now(p)
    p.set_defaults(handler=_note)

    p = sub.add_parser("resolve", help="resolve with root cause, owners and actions", parents=[common])
    p.add_argument("incident_id")
    p.add_argument("--root-cause", required=True)
    p.add_argument("--owner", action="append", required=True, help="repeatable")
    p.add_argument("--action", action="append", required=True, help="repeatable")
    p.add_argument("--force", action="store_true", help="resolve although automatic exit criteria are not met")
    add_now(p)
    p.set_defaults(handler=_resolve)


def _summary_row(incident) -> dict:
    return {
        "id": incident.id,
        "state": incident.state.value,
        "cause": incident.cause,
        "markets": list(incident.scope.markets),
        "opened_at": incident.opened_at,
        "detections": incident.detections,
        "owners": list(incident.owners),
    }


@domain_errors
def _open(args) -> int:
    market = registered_market(args.market)
    if args.end < args.start:
        raise CliError(f"--end {args.end.isoformat()} is before --start {args.start.isoformat()}")
    sessions = calendar_for(market.market_id, market.calendar).sessions(args.start.date(), args.end.date())
    incident, opened = responder(args).detect(
        "user_report", market.market_id, now=now_of(args), symbols=args.symbol,
        sessions=[s.isoformat() for s in sessions], windows=[TimeWindow(args.start, args.end)],
        description=args.description,
    )
    payload = {"opened": opened, "incident": incident.to_dict(), "artefacts": incident_dir(incident)}
    verb = "opened" if opened else "joined open incident"
    emit(args, payload, f"{verb} {incident.id} ({incident.state.value}); timeline: {incident_dir(incident)}/timeline.md")
    return 0


@domain_errors
def _list(args) -> int:
    incidents = engine().store.list(args.state, market=args.market)
    emit(args, {"incidents": [i.to_dict() for i in incidents]}, table([_summary_row(i) for i in incidents]))
    return 0


@domain_errors
def _show(args) -> int:
    eng = engine()
    incident = eng.store.get(args.incident_id)
    events = eng.store.events(incident.id)
    payload = {
        "incident": incident.to_dict(),
        "events": [e.to_dict() for e in events],
        "gaps": [g.to_dict() for g in eng.store.gap_windows(incident.id)],
        "backfills": [b.to_dict() for b in eng.store.backfills(incident.id)],
        "quarantined_batches": [q.to_dict() for q in eng.store.quarantined_batches(incident.id)],
        "followups": [f.to_dict() for f in eng.store.followups(incident.id)],
        "holds": [{"market": m, "toggle": t} for m, t in eng.control.holds_of(incident.id)],
        "exit_criteria": incident.last_evaluation,
        "artefacts": incident_dir(incident),
    }
    human = render_timeline(incident, events)
    if incident.last_evaluation:
        evaluation = ExitEvaluation.from_dict(incident.last_evaluation)
        human += "\n## Evidence\n\n" + "\n".join(
            f"- {c.name}: {c.evidence}" for c in evaluation.criteria
        ) + "\n"
    emit(args, payload, human)
    return 0


@domain_errors
def _note(args) -> int:
    if not args.vendor_ref and not args.text:
        raise CliError("nothing to note", hint="give --vendor-ref REF and/or --text TEXT")
    eng = engine()
    incident = eng.store.note(args.incident_id, now=now_of(args), vendor_ref=args.vendor_ref, text=args.text)
    eng.write_artefacts(incident.id)
    emit(args, {"incident": incident.to_dict()}, f"noted on {incident.id}")
    return 0


@domain_errors
def _resolve(args) -> int:
    resp = responder(args)
    eng = resp.engine
    incident = resp.resolve(args.incident_id, now=now_of(args), root_cause=args.root_cause, owners=args.owner,
                            actions=args.action, force=args.force)
    base = incident_dir(incident)
    payload = {"incident": incident.to_dict(), "postmortem": f"{base}/postmortem.md",
               "followups": [f.to_dict() for f in eng.store.followups(incident.id)]}
    lines = [f"resolved {incident.id}; post-mortem draft: {base}/postmortem.md",
             *render_exit_criteria(incident.last_evaluation)]
    emit(args, payload, "\n".join(lines))
    return 0
