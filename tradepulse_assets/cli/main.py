"""``tradepulse-cli``: the runbook's commands, for people (tables, progress) and machines (``--json``).

Each command group lives in its own module exposing ``register(subparsers)``; this module only
assembles them and turns expected failures into one clear line.
"""

import argparse
import sys
import traceback

from tradepulse_assets.cli import markets as markets_cli
from tradepulse_assets.cli.output import CliError

GROUPS = {
    "vendor": "simulated and real vendor drops: publish, serve, scenario catalogue",
    "ingest": "ingestion: backfill gap windows, reseed connectors, stream micro-batches",
    "quality": "quality gates outside Dagster (pre-flight check of a delivery)",
    "incident": "incidents: open, list, show, note, resolve",
    "control": "control plane: pause/resume consumers, freeze strategy promotions",
    "chaos": "chaos replays of fault scenarios on simulated time",
}


def _group_modules():
    """Command-group modules that exist so far; each exposes ``register(group_subparsers)``."""
    import importlib

    modules = {}
    for name in GROUPS:
        try:
            modules[name] = importlib.import_module(f"tradepulse_assets.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"tradepulse_assets.cli.{name}_cmd":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable JSON output")
    common.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    parser = argparse.ArgumentParser(
        prog="tradepulse-cli",
        description="TradePulse Assets: market-data incident response on Dagster.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    markets_cli.register(sub, common)
    modules = _group_modules()
    for name, help_text in GROUPS.items():
        group = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        group_sub = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        if name in modules:
            modules[name].register(group_sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still gets one readable line
        if args.verbose:
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: re-run with --verbose for the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
