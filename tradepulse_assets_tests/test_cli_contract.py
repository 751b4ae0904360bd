"""What every ``tradepulse-cli`` command promises (issues #11 and #15): ``--json`` anywhere on the line, an
error as one line naming the argument and the fix (or a JSON object on stdout under ``--json``), no
traceback without ``--verbose``, a quiet end when the reader closes the pipe, and a fast ``--help``."""

import json
import os
import subprocess
import sys

import pytest

from tradepulse_assets.cli.main import main
from tradepulse_assets.cli.output import Progress, table

CLI = [sys.executable, "-m", "tradepulse_assets.cli.main"]


def run_cli(*args: str, env_home, stdin=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRADEPULSE_HOME": str(env_home)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    "argv, argument",
    [
        (["vendor", "publish", "--market", "XNYS", "--start", "2026-13-45", "--end", "2026-01-05", "--dest", "x"],
         "--start"),
        (["ingest", "backfill", "--market", "XNYS", "--start", "2026-01-05", "--end", "2026-01-99", "--output", "o"],
         "--end"),
        (["incident", "open", "--market", "XNYS", "--start", "2026-03-09T14:30", "--end", "soon",
          "--description", "d"], "--end"),
        (["incident", "open", "--market", "XNYS", "--start", "2026-03-09", "--end", "2026-03-10",
          "--description", "d", "--now", "yesterday-ish"], "--now"),
        (["calendar", "sessions", "--market", "XNYS", "--start", "2026-02-30", "--end", "2026-03-01"], "--start"),
        (["quality", "check", "--source", "s", "--market", "XNYS", "--session", "09/03/2026"], "--session"),
    ],
)
def test_a_bad_time_is_one_line_naming_the_argument_and_the_fix(argv, argument, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: argument {argument}: ") and "use " in lines[0], lines[0]
    assert "Traceback" not in captured.err


def test_json_anywhere_on_the_line_and_json_errors_on_stdout(capsys):
    assert main(["--json", "calendar", "sessions", "--market", "XNYS", "--start", "2026-11-25",
                 "--end", "2026-11-30"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["calendar", "--json", "sessions", "--market", "XNYS", "--start", "2026-11-25",
                 "--end", "2026-11-30"]) == 0
    middle = json.loads(capsys.readouterr().out)
    assert before == middle and [s["session"] for s in before["sessions"]] == ["2026-11-25", "2026-11-27",
                                                                             "2026-11-30"]
    assert main(["--json", "vendor", "publish", "--market", "XNYS", "--start", "2026-13-45", "--end",
                 "2026-01-05", "--dest", "x"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["message"].startswith("argument --start: '2026-13-45' is not a date")
    assert error["exit_code"] == 2 and captured.err.startswith("error: argument --start")


def test_a_missing_source_folder_is_named_as_such(tmp_path, capsys):
    missing = tmp_path / "no-such-drop"
    assert main(["quality", "check", "--source", str(missing), "--market", "XNYS", "--session", "2026-03-09"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: argument --source: vendor directory {missing} does not exist"), err
    assert "manifest yet" not in err and err.count("\n") == 1


def test_an_unexpected_failure_is_one_line_and_the_traceback_only_with_verbose(monkeypatch, capsys):
    import tradepulse_assets.cli.markets as markets_cli

    def explode(_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(markets_cli, "_markets", explode)
    assert main(["markets"]) == 1
    err = capsys.readouterr().err
    assert err == "error: RuntimeError: disk on fire (fix: re-run with --verbose for the traceback)\n"
    assert main(["markets", "--verbose"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_piping_into_head_ends_quietly(tmp_path):
    """The reader takes two lines and goes away while the command still has far more than a pipe buffer
    (64 KiB) to write: the write must fail, and the command must end without a word on stderr."""
    env = {**os.environ, "TRADEPULSE_HOME": str(tmp_path)}
    argv = [*CLI, "calendar", "sessions", "--market", "CRYPTO", "--start", "2024-01-01", "--end", "2027-12-31",
            "--json"]  # about 200 KiB
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = [proc.stdout.readline() for _ in range(2)]
    proc.stdout.close()  # what head does after its lines
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # the shell's code for a writer whose reader went away
    assert first[0].strip() == b"{" and stderr == "", stderr  # no BrokenPipeError, no "Exception ignored"


def test_help_imports_no_command_module():
    code = ("import sys, contextlib, io\n"
            "from tradepulse_assets.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "heavy = sorted(m for m in ('polars', 'dagster', 'pandas', 'numba', 'rich') if m in sys.modules)\n"
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_tables_are_rich_and_plain_in_a_pipe():
    text = table([{"session": "2026-03-09", "rows": 390}, {"session": "2026-03-10", "rows": None}])
    lines = text.splitlines()
    assert lines[0].split() == ["SESSION", "ROWS"] and set(lines[1].strip()) == {"─"}
    assert lines[2].split() == ["2026-03-09", "390"] and lines[3].split() == ["2026-03-10", "-"]
    assert "\x1b[" not in text  # no colour codes outside a terminal
    assert table([]) == "(none)"


class Args:
    json = False


def test_progress_lines_carry_an_eta_outside_a_terminal(capsys):
    with Progress(Args(), total=3, label="backfill XNYS") as progress:
        for day in ("2026-03-09", "2026-03-10", "2026-03-11"):
            progress.step(day, "reconciled")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("[1/3] backfill XNYS 2026-03-09: reconciled (ETA ")
    assert lines[2] == "[3/3] backfill XNYS 2026-03-11: reconciled"


def test_progress_is_silent_under_json(capsys):
    args = Args()
    args.json = True
    progress = Progress(args, total=None, label="replay")
    progress.set_total(2)
    progress.step("detect")
    progress.close()
    assert capsys.readouterr().err == ""
