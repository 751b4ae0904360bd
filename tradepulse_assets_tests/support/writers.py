"""Concurrent writer processes for the tests of multi-process appends (audit log, JSONL primitive)."""

import json
import multiprocessing
from collections.abc import Callable
from typing import Any


def run_writer_processes(target: Callable[..., None], argument: Any, writers: int) -> None:
    """Run ``target(argument, w)`` in ``writers`` spawned processes at once; every one must exit 0."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=(argument, w)) for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [p.exitcode for p in processes] == [0] * writers


def whole_json_lines(raw: bytes, expected: int) -> list[dict[str, Any]]:
    """The records of a JSONL file that must hold exactly ``expected`` whole lines (parse errors fail)."""
    lines = raw.split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == expected
    return [json.loads(line) for line in lines[:-1]]
