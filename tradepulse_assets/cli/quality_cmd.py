"""``tradepulse-cli quality check``: every gate on a vendor delivery, before it lands (pre-flight)."""


from tradepulse_assets.cli.markets import registered_market
from tradepulse_assets.cli.output import CliError, emit, iso_date, table
from tradepulse_assets.feeds.sources import connector_for
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.feeds.connectors import VendorError

BLOCKING_FAILED = 1


def register(sub, common) -> None:
    p = sub.add_parser("check", help="run every gate on a vendor drop's session without landing it",
                       parents=[common])
    p.add_argument("--source", required=True, help="vendor drop: directory, s3://bucket/prefix or http(s)://")
    p.add_argument("--market", required=True)
    p.add_argument("--session", required=True, type=iso_date)
    p.add_argument("--evidence", type=int, default=3, help="offending rows to print per failed gate")
    p.set_defaults(handler=_check)


def _check(args) -> int:
    market = registered_market(args.market)
    settings = load_settings()
    connector = connector_for(args.source, s3_endpoint_url=settings.s3_endpoint_url)
    try:
        connector.check_connectivity()  # a missing folder is named as such, not "no manifest yet"
    except VendorError as exc:
        raise CliError(f"argument --source: {exc}",
                       hint="give the drop's root: it holds <MARKET>/<YYYY-MM-DD>/manifest.json") from None
    try:
        results = ingest.preflight(connector, market, args.session)
    except ingest.NotPublished as exc:
        raise CliError(str(exc), hint="the vendor has not delivered this session (yet)") from None
    except VendorError as exc:
        raise CliError(str(exc), hint="check --source and TRADEPULSE_VENDOR_TOKEN") from None
    failed_blocking = [r.gate for r in results if r.blocking and not r.passed]
    rows = [{"gate": r.gate, "verdict": "pass" if r.passed else ("FAIL" if r.blocking else "warn"),
             "blocking": r.blocking, "summary": r.summary} for r in results]
    lines = [table(rows)]
    for r in results:
        if not r.passed and r.evidence:
            lines.append(f"\n{r.gate}: first offending rows")
            lines.extend(f"  {row}" for row in r.evidence[: args.evidence])
    lines.append(f"\n{market.market_id} {args.session}: "
                 + (f"BLOCKED by {', '.join(failed_blocking)}" if failed_blocking else "every blocking gate passed"))
    emit(args, {"market": market.market_id, "session": args.session, "passed": not failed_blocking,
                "blocking_failures": failed_blocking, "results": [r.to_metadata() for r in results]},
         "\n".join(lines))
    return BLOCKING_FAILED if failed_blocking else 0
