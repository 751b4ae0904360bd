"""Shared output conventions of ``tradepulse-cli``: ``--json`` for machines, ``rich`` tables and progress bars
for people, one-line errors that name the argument and the fix (the traceback only under ``--verbose``).

Kept light on purpose: ``rich`` is imported when something is drawn, so ``tradepulse-cli --help`` stays fast.
"""

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

DATE_EXAMPLE = "2026-03-09"
INSTANT_EXAMPLE = "2026-03-09T14:30:00Z"


class CliError(Exception):
    """An expected failure: printed as one line with its fix, exit code ``code``."""

    def __init__(self, message: str, hint: str | None = None, code: int = 2):
        super().__init__(message)
        self.hint = hint
        self.code = code

    def line(self) -> str:
        return f"error: {self}" + (f" (fix: {self.hint})" if self.hint else "")

    def to_json(self) -> dict:
        return {"error": {"message": str(self), "hint": self.hint, "exit_code": self.code}}


# --- argument types: argparse prefixes their message with the argument's name ("argument --start: ...") ----
def iso_date(text: str) -> dt.date:
    """A calendar day, ``YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; use YYYY-MM-DD, e.g. {DATE_EXAMPLE}"
        ) from None


def iso_instant(text: str) -> dt.datetime:
    """An ISO-8601 instant in UTC; a naive value is taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time; use e.g. {INSTANT_EXAMPLE} or {DATE_EXAMPLE}"
        ) from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def iso_day(text: str) -> str:
    """A day given as a date or a datetime (the day it falls on in UTC); kept as the text the user typed."""
    if "T" in text or " " in text.strip():
        iso_instant(text)
    else:
        iso_date(text)
    return text


# --- rendering -------------------------------------------------------------------------------------------
def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    return str(value)


def dumps(payload: Any) -> str:
    return json.dumps(payload, default=_default, sort_keys=True, indent=2)


def _console(file=None):
    from rich.console import Console

    file = file or sys.stdout
    interactive = file.isatty()
    # In a pipe: no colour and no wrapping (a fixed wide width), so grep and head see whole rows.
    width = shutil.get_terminal_size((200, 24)).columns if interactive else 200
    return Console(file=file, width=width, force_terminal=interactive, no_color=not interactive,
                   highlight=False, soft_wrap=not interactive)


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, title: str | None = None
) -> str:
    """A ``rich`` table rendered to text (plain in a pipe); empty input prints ``(none)``."""
    if not rows:
        return "(none)"
    from rich import box
    from rich.table import Table

    columns = list(columns or rows[0].keys())
    grid = Table(*(c.upper() for c in columns), box=box.SIMPLE_HEAD, title=title, pad_edge=False,
                 header_style="bold")
    for row in rows:
        grid.add_row(*(_cell(row.get(c)) for c in columns))
    console = _console()
    with console.capture() as captured:
        console.print(grid)
    return "\n".join(line.rstrip() for line in captured.get().splitlines()).strip("\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(_cell, value))
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def emit(args, payload: Any, human: str | None = None) -> None:
    """Print ``payload`` as JSON under ``--json``, else the human rendering."""
    if getattr(args, "json", False):
        print(dumps(payload))
    else:
        print(human if human is not None else dumps(payload))


class Progress:
    """The progress hook of long commands: a ``rich`` bar with ETA on a terminal, one line per item in a log,
    nothing under ``--json`` (stdout stays one JSON document; the bar is on stderr anyway).

    Use as a context manager, or call ``step`` and ``close``::

        with Progress(args, total=len(sessions), label="backfill XNYS") as progress:
            for session in sessions:
                ...
                progress.step(str(session), verdict)

    ``total`` may be unknown (None) and set later with ``set_total`` (a replay learns its stages as it goes).
    """

    def __init__(self, args, total: int | None, label: str, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.enabled = not getattr(args, "json", False)
        self.started = time.monotonic()
        self._bar = self._task = None
        if self.enabled and self.stream.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[item]}"),
                console=_console(self.stream), transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total, item="")

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def step(self, item: str, status: str = "ok") -> None:
        self.done += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=1, item=f"{item}: {status}")
            return
        of = f"/{self.total}" if self.total else ""
        print(f"[{self.done}{of}] {self.label} {item}: {status}{self._eta()}", file=self.stream, flush=True)

    def _eta(self) -> str:
        if not self.total or self.done >= self.total:
            return ""
        left = (time.monotonic() - self.started) / self.done * (self.total - self.done)
        return f" (ETA {int(left) // 60}m{int(left) % 60:02d}s)"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
