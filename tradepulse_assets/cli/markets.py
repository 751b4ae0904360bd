"""``tradepulse-cli markets`` and ``tradepulse-cli calendar sessions``."""

import datetime as dt

from tradepulse_assets.cli.output import CliError, emit, iso_date, table
from tradepulse_assets.markets import Market, calendar_for, load_registry
from tradepulse_assets.markets.calendars import CalendarError


def add_commands(sub, common) -> None:
    markets = sub.add_parser("markets", help="the market registry with today's session hours", parents=[common])
    markets.add_argument("--date", type=iso_date, help="day to show hours for (default: today UTC)")
    markets.set_defaults(handler=_markets)

    calendar = sub.add_parser("calendar", help="trading calendars", parents=[common])
    cal_sub = calendar.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    sessions = cal_sub.add_parser("sessions", help="a market's sessions and hours in a date range", parents=[common])
    sessions.add_argument("--market", required=True)
    sessions.add_argument("--start", required=True, type=iso_date)
    sessions.add_argument("--end", required=True, type=iso_date)
    sessions.set_defaults(handler=_sessions)


def registered_market(market_id: str) -> Market:
    """The registry's market, or one clear CLI error naming the known ones."""
    try:
        return load_registry().get(market_id)
    except KeyError as exc:
        raise CliError(str(exc.args[0]), hint="tradepulse-cli markets lists the registry") from None


def _hours_row(market, session) -> dict:
    h = calendar_for(market.market_id, market.calendar).hours(session)
    return {
        "session": session,
        "open_utc": h.open.strftime("%H:%M"),
        "close_utc": h.close.strftime("%H:%M"),
        "break_utc": f"{h.break_start:%H:%M}-{h.break_end:%H:%M}" if h.break_start else None,
        "minutes": h.minutes,
    }


def _markets(args) -> int:
    day = args.date or dt.datetime.now(dt.timezone.utc).date()
    rows = []
    for m in load_registry():
        cal = calendar_for(m.market_id, m.calendar)
        row = {
            "market": m.market_id,
            "calendar": m.calendar,
            "mode": m.ingestion_mode.value,
            "sla_s": m.lag_sla_seconds,
            "symbols": m.universe_size,
            "vendor": m.vendor,
        }
        if cal.is_session(day):
            row.update(_hours_row(m, day))
        else:
            row.update(session=None, open_utc="closed", close_utc=None, break_utc=None, minutes=0)
        row["warning"] = cal.horizon_warning(day)
        rows.append(row)
    emit(args, {"date": day, "markets": rows}, f"Sessions on {day} (UTC)\n" + table(rows))
    return 0


def _sessions(args) -> int:
    market = registered_market(args.market)
    if args.end < args.start:
        raise CliError(f"--end {args.end} is before --start {args.start}")
    try:
        sessions = calendar_for(market.market_id, market.calendar).sessions(args.start, args.end)
        rows = [_hours_row(market, s) for s in sessions]
    except CalendarError as exc:
        raise CliError(str(exc)) from None
    emit(args, {"market": market.market_id, "sessions": rows}, table(rows))
    return 0
