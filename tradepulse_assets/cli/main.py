"""``tradepulse-cli``: the runbook's commands, for people (tables, progress) and machines (``--json``).

Each command group lives in its own module exposing ``add_commands(subparsers, common)``; this module only
assembles them, and keeps the promises every command shares:

- ``--json`` and ``--verbose`` anywhere on the line (before or after the sub-command);
- an error is one line on stderr naming the argument and the fix (exit 2 for usage, the command's code
  otherwise), and under ``--json`` also a JSON object on stdout; the traceback only with ``--verbose``;
- a closed pipe (``| head``) ends quietly;
- ``--help`` is fast: a group's module (polars, Dagster...) is imported only when that group is used.
"""

import argparse
import importlib
import os
import sys
import traceback

from tradepulse_assets.cli.output import CliError, dumps

# Top-level commands and the module that registers them; a group's module registers its sub-commands.
TOP_LEVEL = {
    "markets": ("markets", "the market registry with today's session hours"),
    "calendar": ("markets", "trading calendars"),
    "doctor": ("doctor_cmd", "find and remove temporary files left by interrupted writes"),
    "sql": ("sql_cmd", "query the lake and the data-health catalog with DuckDB SQL"),
}
GROUPS = {
    "vendor": "simulated and real vendor drops: publish, serve, scenario catalogue",
    "ingest": "ingestion: backfill gap windows, reseed connectors, stream micro-batches",
    "quality": "quality gates outside Dagster (pre-flight check of a delivery)",
    "incident": "incidents: open, list, show, note, resolve",
    "control": "control plane: pause/resume consumers, freeze strategy promotions",
    "chaos": "chaos replays of fault scenarios on simulated time",
    "notify": "notification outbox: list, resend, deliver now",
}
GLOBAL_FLAGS = ("--json", "--verbose")
BROKEN_PIPE_EXIT = 141  # what a shell reports for a process ended by SIGPIPE


class Parser(argparse.ArgumentParser):
    """Usage errors become one ``CliError`` line naming the argument, instead of argparse's usage dump."""

    def error(self, message: str):
        raise CliError(message, hint=f"{self.prog} --help")


#: A group whose sub-commands span several modules (kept apart so each file stays one concern).
GROUP_MODULES = {"incident": ("incident_cmd", "incident_followups")}


def _group_modules(name: str) -> list:
    """The modules that add the sub-commands of group ``name``."""
    names = GROUP_MODULES.get(name, (f"{name}_cmd",))
    return [importlib.import_module(f"tradepulse_assets.cli.{module}") for module in names]


def _chosen_command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> Parser:
    """The parser; only ``command``'s module is imported (every group when ``command`` is ``"*"``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="JSON output for machines (anywhere on the line)")
    common.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    parser = Parser(
        prog="tradepulse-cli",
        description="TradePulse Assets: market-data incident response on Dagster.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = {m for m, _ in TOP_LEVEL.values()} if command == "*" else {TOP_LEVEL.get(command, ("",))[0]} - {""}
    for module in sorted(chosen):
        importlib.import_module(f"tradepulse_assets.cli.{module}").add_commands(sub, common)
    for name, (module, help_text) in TOP_LEVEL.items():
        if module not in chosen:
            sub.add_parser(name, help=help_text, add_help=False)
    for name, help_text in GROUPS.items():
        group = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        group_sub = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        if command in (name, "*"):
            for module in _group_modules(name):
                module.add_commands(group_sub, common)
    return parser


def split_global_flags(argv: list[str]) -> tuple[list[str], set[str]]:
    """``--json``/``--verbose`` wherever they are (up to a ``--``), and the rest of the line."""
    rest, flags = [], set()
    for i, arg in enumerate(argv):
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in GLOBAL_FLAGS:
            flags.add(arg)
        else:
            rest.append(arg)
    return rest, flags


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, flags = split_global_flags(argv)
    as_json, verbose = "--json" in flags, "--verbose" in flags
    try:
        args = build_parser(_chosen_command(rest)).parse_args(rest)
        args.json, args.verbose = as_json, verbose
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # here, not at interpreter exit, so a closed pipe is caught below
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except CliError as exc:
        return _report(exc, as_json, verbose)
    except KeyboardInterrupt:
        return _report(CliError("interrupted", code=130), as_json, verbose=False)
    except Exception as exc:  # an unexpected failure still gets one readable line
        failure = CliError(f"{type(exc).__name__}: {exc}", hint="re-run with --verbose for the traceback",
                           code=1)
        return _report(failure, as_json, verbose)


def _report(exc: CliError, as_json: bool, verbose: bool) -> int:
    try:
        if verbose:
            traceback.print_exc()
        if as_json:  # the program reading stdout gets an object; the person watching still gets the line
            print(dumps(exc.to_json()))
        print(exc.line(), file=sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    return exc.code


def _quiet_broken_pipe() -> int:
    """The reader went away (``| head``): stop writing, and let the interpreter's final flush go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
