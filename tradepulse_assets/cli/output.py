"""Shared output conventions of ``tradepulse-cli``: ``--json`` for machines, tables and progress for
people, one-line errors with a hint (the traceback only under ``--verbose``)."""

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


class CliError(Exception):
    """An expected failure: printed as one line plus a hint, exit code ``code``."""

    def __init__(self, message: str, hint: str | None = None, code: int = 2):
        super().__init__(message)
        self.hint = hint
        self.code = code


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


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain fixed-width table; empty input prints ``(none)``."""
    if not rows:
        return "(none)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line([c.upper() for c in columns]), line(["-" * w for w in widths]), *map(line, cells)])


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
    """Per-item progress lines on stderr (silent under ``--json``), then a summary line."""

    def __init__(self, args, total: int, label: str):
        self.enabled = not getattr(args, "json", False)
        self.total, self.label, self.done = total, label, 0

    def step(self, item: str, status: str = "ok") -> None:
        self.done += 1
        if self.enabled:
            print(f"[{self.done}/{self.total}] {self.label} {item}: {status}", file=sys.stderr, flush=True)

    def iterate(self, items: Iterable[Any]) -> Iterable[Any]:
        for item in items:
            yield item
