"""``tradepulse-cli vendor``: publish simulated drops (with fault scenarios), serve a drop over HTTP, list the
fault catalogue, and write manifests for a user's own vendor files."""

import argparse
import os
import sys

from tradepulse_assets.cli.output import CliError, Progress, emit, iso_date, table
from tradepulse_assets.feeds.manifest import BarFileError, ManifestError
from tradepulse_assets.feeds.publisher import FORMATS, PublishError, Publisher, drop_store, manifest_for_directory
from tradepulse_assets.core.environment import read
from tradepulse_assets.core.io import S3Settings
from tradepulse_assets.storage.object_store import StorageError
from tradepulse_assets.feeds.scenarios import ScenarioError, catalogue, load_scenario


def add_commands(sub, common) -> None:
    publish = sub.add_parser(
        "publish", help="publish simulated sessions (optionally with fault scenarios)", parents=[common]
    )
    publish.add_argument("--market", required=True)
    publish.add_argument("--start", required=True, type=iso_date)
    publish.add_argument("--end", required=True, type=iso_date)
    publish.add_argument("--dest", required=True, help="local directory or s3://bucket/prefix")
    publish.add_argument("--seed", type=int, default=0)
    publish.add_argument(
        "--scenario", action="append", default=[], help="scenario YAML file or packaged name"
    )
    publish.add_argument("--symbols", type=int, help="universe size (default: the registry's)")
    publish.add_argument("--format", choices=sorted(FORMATS), default="parquet")
    publish.add_argument("--by-minute", action="store_true", help="one file per minute (streaming layout)")
    publish.add_argument(
        "--as-vendor",
        action="store_true",
        help="publish in the format of the market's vendor in the registry (Databento job, flat files, "
        "mapped) "
        "under <dest>/<market>/ (docs/vendors.md)",
    )
    publish.add_argument(
        "--endpoint-url",
        default=read("AWS_ENDPOINT_URL"),
        help="S3 endpoint (MinIO, moto...); default $AWS_ENDPOINT_URL",
    )
    publish.set_defaults(handler=_publish)

    serve = sub.add_parser("serve", help="serve a drop over HTTP with bearer-token auth", parents=[common])
    serve.add_argument("--root", required=True)
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--token-file", help="file holding the bearer token (default: $TRADEPULSE_VENDOR_TOKEN)")
    serve.add_argument("--token", help=argparse.SUPPRESS)  # refused: argv is visible in the process list
    serve.add_argument("--workers", type=int, default=8, help="worker threads (bounded pool)")
    serve.add_argument("--idle-timeout", type=float, default=10.0, help="seconds a silent connection is kept")
    serve.add_argument("--request-timeout", type=float, default=30.0, help="seconds per read/write of a request")
    serve.set_defaults(handler=_serve)

    scenarios = sub.add_parser("scenarios", help="the fault-scenario catalogue", parents=[common])
    scenarios.set_defaults(handler=_scenarios)

    manifest = sub.add_parser(
        "manifest",
        help="write manifest.json for your own files in <root>/<market>/<session>",
        parents=[common],
    )
    manifest.add_argument("--dir", required=True)
    manifest.add_argument("--market", help="default: the folder's parent name")
    manifest.add_argument("--session", type=iso_date, help="default: the folder name")
    manifest.add_argument(
        "--condition", default="available", choices=["available", "degraded", "pending", "missing"]
    )
    manifest.set_defaults(handler=_manifest)


def _publish(args) -> int:
    if args.end < args.start:
        raise CliError(f"--end {args.end} is before --start {args.start}")
    try:
        scenarios = [load_scenario(s) for s in args.scenario]
        dest = drop_store(args.dest, S3Settings(endpoint_url=args.endpoint_url))
        publisher = Publisher(
            dest, seed=args.seed, n_symbols=args.symbols, scenarios=scenarios, file_format=args.format
        )
        market = publisher.market(args.market)
    except (ScenarioError, PublishError, StorageError) as exc:
        raise CliError(str(exc)) from None
    except KeyError as exc:
        raise CliError(str(exc.args[0]), hint="tradepulse-cli markets lists the registry") from None
    from tradepulse_assets.markets import calendar_for

    sessions = calendar_for(market.market_id, market.calendar).sessions(args.start, args.end)
    if not sessions:
        raise CliError(f"{market.market_id} has no sessions in {args.start}..{args.end}")
    progress = Progress(args, len(sessions), f"{market.market_id}")

    def report(result):
        damage = f" damage={','.join(result.damages)}" if result.damages else ""
        progress.step(
            str(result.session), f"{result.status} r{result.revision or '-'} {result.records} bars{damage}"
        )

    if args.as_vendor:
        from tradepulse_assets.feeds.vendor_publish import publish_vendor

        spec = publisher.registry.vendor_of(market.market_id)
        if spec.is_drop_format:
            raise CliError(
                f"{market.market_id}'s vendor {spec.name!r} delivers our drop format; drop --as-vendor"
            )
        results = publish_vendor(publisher, dest, spec, market.market_id, sessions)
        for result in results:
            report(result)
    else:
        results = publisher.publish_range(
            market.market_id, args.start, args.end, by_minute=args.by_minute, on_session=report
        )
    rows = [r.to_dict() for r in results]
    summary = {
        "market": market.market_id,
        "dest": args.dest,
        "seed": args.seed,
        "sessions": len(results),
        "published": sum(r.status == "published" for r in results),
        "records": sum(r.records for r in results),
        "scenarios": [s.name for s in scenarios],
        "results": rows,
    }
    human = table(rows, ["session", "status", "revision", "files", "records", "condition", "damages"])
    human += (
        f"\n{summary['published']}/{len(results)} session(s) published to {args.dest}, "
        f"{summary['records']} bars (seed {args.seed})"
    )
    emit(args, summary, human)
    return 0


def _serve(args) -> int:
    from tradepulse_assets.feeds.server import TokenError, load_token, make_server

    if args.token is not None:
        raise CliError(
            "--token: a token on the command line is visible to every user in the process list",
            hint="set TRADEPULSE_VENDOR_TOKEN or pass --token-file <file>",
        )
    try:
        token = load_token(args.token_file)
    except TokenError as exc:
        raise CliError(str(exc), hint="set TRADEPULSE_VENDOR_TOKEN or pass --token-file <file>") from None
    if not os.path.isdir(args.root):
        raise CliError(f"{args.root}: not a directory")
    try:
        server = make_server(args.root, token, args.host, args.port, workers=args.workers,
                             idle_timeout=args.idle_timeout, request_timeout=args.request_timeout)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    host, port = server.server_address[:2]
    print(f"serving {args.root} on http://{host}:{port}/v1 (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _scenarios(args) -> int:
    rows = catalogue()
    emit(args, rows, table(rows, ["kind", "gate", "stage", "description"]))
    return 0


def _manifest(args) -> int:
    try:
        manifest, changed = manifest_for_directory(args.dir, args.market, args.session, args.condition)
    except (PublishError, BarFileError, ManifestError) as exc:
        raise CliError(str(exc)) from None
    payload = {**manifest.to_dict(), "changed": changed}
    human = table(
        [
            {"file": f.name, "size": f.size, "records": f.record_count, "sha256": f.sha256[:16]}
            for f in manifest.files
        ]
    )
    human += (
        f"\n{manifest.market} {manifest.session} revision {manifest.revision} "
        f"({'written' if changed else 'unchanged'}): {manifest.record_count} records"
    )
    emit(args, payload, human)
    return 0
