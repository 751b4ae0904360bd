"""``tradepulse-cli control``: pause/resume consumers and freeze strategy promotions per market.

An operator's pause is a ``manual`` hold; ``resume`` without ``--incident`` releases every hold on
the toggle (an override, written on each affected incident's timeline). ``--incident ID`` acts as
that incident: its hold only. See ``incidents/control_plane.py`` for why toggles are holds.
"""

from tradepulse_assets.cli.incident_cmd import add_now, domain_errors, engine, now_of
from tradepulse_assets.cli.output import CliError, emit, table
from tradepulse_assets.incidents.control_plane import TOGGLES


def add_commands(sub, common) -> None:
    for name, verb in (("pause", "pause consumers / freeze promotions"),
                       ("resume", "resume consumers / unfreeze promotions")):
        p = sub.add_parser(name, help=f"{verb} on a market", parents=[common])
        p.add_argument("--market", required=True)
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--consumer", choices=TOGGLES)
        target.add_argument("--all", action="store_true", help="every consumer and strategy promotions")
        p.add_argument("--reason", required=True)
        p.add_argument("--incident", help="act as this incident (its hold; logged on its timeline)")
        add_now(p)
        p.set_defaults(handler=_pause if name == "pause" else _resume)

    p = sub.add_parser("status", help="toggles and their holds", parents=[common])
    p.add_argument("--market")
    p.set_defaults(handler=_status)


def _rows(statuses) -> list[dict]:
    return [
        {"market": s.market, "toggle": s.toggle, "paused": s.paused,
         "holders": [h.holder for h in s.holds], "reason": s.holds[-1].reason if s.holds else None}
        for s in statuses
    ]


def _change(args, action: str) -> int:
    eng = engine()
    if args.incident:
        eng.store.get(args.incident)  # a typo'd incident id fails here, before any toggle changes
    toggles = TOGGLES if args.all else (args.consumer,)
    before = {h.incident_id for s in eng.control.status(args.market) if s.toggle in toggles for h in s.holds}
    fn = eng.control.pause if action == "pause" else eng.control.resume
    statuses = [fn(args.market, t, reason=args.reason, now=now_of(args), incident_id=args.incident) for t in toggles]
    for incident_id in sorted((before | {args.incident}) - {None}):
        eng.write_artefacts(incident_id)  # the change is on their timelines: keep timeline.md in step
    still = [s.toggle for s in statuses if action == "resume" and s.paused]
    emit(args, {"action": action, "toggles": [s.to_dict() for s in statuses]},
         table(_rows(statuses)) + (f"\nstill held: {', '.join(still)}" if still else ""))
    return 0


@domain_errors
def _pause(args) -> int:
    return _change(args, "pause")


@domain_errors
def _resume(args) -> int:
    return _change(args, "resume")


@domain_errors
def _status(args) -> int:
    eng = engine()
    if args.market and args.market not in (eng.control.markets or ()):
        raise CliError(f"unknown market {args.market!r}", hint="tradepulse-cli markets lists the registry")
    statuses = eng.control.status(args.market)
    emit(args, {"toggles": [s.to_dict() for s in statuses]}, table(_rows(statuses)))
    return 0
