"""``tradepulse-cli incident followups|followup-done|review|signoff``: what resolution leaves to do, and the
periodic review. Added to the ``incident`` group beside ``incident_cmd`` (cli/main.py), kept apart so each file stays one concern."""

import datetime as dt

from tradepulse_assets.cli.incident_cmd import add_now, domain_errors, engine, now_of, parse_instant
from tradepulse_assets.cli.output import emit, table
from tradepulse_assets.incidents.followups import FollowupActions, overdue
from tradepulse_assets.incidents.review import review_path, review_report
from tradepulse_assets.incidents.signoff import Signoffs

COLUMNS = ("id", "incident_id", "kind", "owner", "due_at", "status", "overdue", "title")


def add_commands(sub, common) -> None:
    p = sub.add_parser(
        "followups",
        help="follow-up action items with owner and due date; overdue ones flagged",
        parents=[common],
    )
    p.add_argument("--incident", help="only this incident's")
    p.add_argument("--all", action="store_true", help="done ones too (default: open only)")
    add_now(p)
    p.set_defaults(handler=_followups)

    p = sub.add_parser("followup-done", help="mark a follow-up action item done", parents=[common])
    p.add_argument("item_id", type=int)
    p.add_argument("--note", default="")
    add_now(p)
    p.set_defaults(handler=_done)

    p = sub.add_parser(
        "review", help="the periodic review: incidents, stage times, open follow-ups", parents=[common]
    )
    p.add_argument("--since", type=parse_instant, help="period start (default: 90 days before --until)")
    p.add_argument("--until", type=parse_instant, help="period end (default: now)")
    p.add_argument(
        "--write", action="store_true", help="also write it to reports/incidents/reviews/<date>.md"
    )
    add_now(p)
    p.set_defaults(handler=_review)

    p = sub.add_parser(
        "signoff", help="record a strategy owner's sign-off (an exit criterion)", parents=[common]
    )
    p.add_argument("incident_id")
    p.add_argument("--owner", required=True, help="the strategy owner signing off")
    p.add_argument("--note", default="", help="e.g. which signals were checked")
    add_now(p)
    p.set_defaults(handler=_signoff)


@domain_errors
def _followups(args) -> int:
    now = now_of(args)
    items = FollowupActions(engine().db).items(args.incident, open_only=not args.all)
    rows = [i.to_dict(now) for i in items]
    late = overdue(items, now)
    footer = f"\n{len(late)} overdue" if late else ""
    emit(args, {"followups": rows, "overdue": len(late)}, table(rows, COLUMNS) + footer)
    return 0


@domain_errors
def _done(args) -> int:
    item = FollowupActions(engine().db).complete(args.item_id, now=now_of(args), note=args.note)
    emit(args, {"followup": item.to_dict()}, f"follow-up {item.id} ({item.kind}) of {item.incident_id} done")
    return 0


@domain_errors
def _review(args) -> int:
    until = args.until or now_of(args)
    since = args.since or until - dt.timedelta(days=90)
    eng = engine()
    text = review_report(eng.store.list(), FollowupActions(eng.db).items(), since=since, until=until)
    payload = {"report": text}
    if args.write:
        path = review_path(until)
        eng.artefacts.put_bytes(path, text.encode(), content_type="text/markdown")
        payload["path"] = path
    emit(args, payload, text)
    return 0


@domain_errors
def _signoff(args) -> int:
    eng = engine()
    signoff = Signoffs(eng.db).record(args.incident_id, owner=args.owner, note=args.note, now=now_of(args))
    eng.write_artefacts(args.incident_id)
    emit(
        args, {"signoff": signoff.to_dict()}, f"sign-off by {signoff.owner} recorded on {signoff.incident_id}"
    )
    return 0
