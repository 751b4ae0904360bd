"""``tradepulse-cli notify``: the notification outbox for operators: list, resend, deliver.

The outbox lives in the state DB (``$TRADEPULSE_STATE_DB_URL``), so these commands see what every sensor, run
and CLI command posted, on any machine. ``deliver`` runs one pass of the delivery worker here and now (the
daemon's ``notification_delivery_sensor`` does the same on its own); ``--now`` uses simulated time.
"""

from tradepulse_assets.cli.incident_cmd import add_now, now_of
from tradepulse_assets.cli.output import CliError, emit, table
from tradepulse_assets.incidents.notifications import Outbox, notifications_for
from tradepulse_assets.incidents.notifications.delivery import note_on_timeline
from tradepulse_assets.incidents.notifications.outbox import STATUSES
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.storage.state import StateDB, StateDBError

COLUMNS = (
    "id",
    "incident_id",
    "channel",
    "stage",
    "event_action",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
)


def _db() -> StateDB:
    try:
        return StateDB(load_settings().state_db_url)
    except StateDBError as exc:
        raise CliError(str(exc), hint="check TRADEPULSE_STATE_DB_URL") from None


def add_commands(sub, common) -> None:
    p = sub.add_parser("list", help="messages in the outbox, oldest first", parents=[common])
    p.add_argument("--status", choices=STATUSES, help="only messages in this state")
    p.add_argument("--incident", help="only messages of this incident")
    p.add_argument("--limit", type=int, default=50, help="the newest N (default 50)")
    p.set_defaults(handler=_list)

    p = sub.add_parser(
        "resend", help="make messages due again now (failed, expired or recorded ones too)", parents=[common]
    )
    p.add_argument("ids", nargs="*", type=int, help="outbox ids (see notify list)")
    p.add_argument("--incident", help="every undelivered message of this incident")
    add_now(p)
    p.set_defaults(handler=_resend)

    p = sub.add_parser("deliver", help="run one pass of the delivery worker now", parents=[common])
    add_now(p)
    p.set_defaults(handler=_deliver)


def _list(args) -> int:
    entries = Outbox(_db()).list(status=args.status, incident_id=args.incident, limit=args.limit)
    rows = [e.to_dict() for e in entries]
    emit(args, {"messages": rows}, table(rows, COLUMNS))
    return 0


def _resend(args) -> int:
    outbox = Outbox(_db())
    ids = list(args.ids)
    if args.incident:
        ids += [e.id for e in outbox.list(incident_id=args.incident, limit=10_000) if e.status != "delivered"]
    if not ids:
        raise CliError(
            "nothing to resend", hint="give outbox ids or --incident (see tradepulse-cli notify list)"
        )
    try:
        entries = outbox.resend(sorted(set(ids)), now=now_of(args))
    except KeyError as exc:
        raise CliError(str(exc.args[0]), hint="tradepulse-cli notify list shows the ids") from None
    rows = [e.to_dict() for e in entries]
    emit(args, {"resent": rows}, table(rows, COLUMNS) + "\nthe delivery worker sends them on its next pass")
    return 0


def _deliver(args) -> int:
    db = _db()
    clock = lambda: now_of(args)
    report = notifications_for(db, load_settings().outbox_path, clock=clock).deliver_due(
        on_give_up=note_on_timeline(IncidentStore(db), clock)
    )
    payload = {
        "delivered": [e.to_dict() for e in report.delivered],
        "retrying": [e.to_dict() for e in report.retrying],
        "given_up": [e.to_dict() for e in report.given_up],
        "left_for_next_pass": report.left_for_next_pass,
    }
    emit(args, payload, report.summary())
    return 0 if not report.given_up else 1
