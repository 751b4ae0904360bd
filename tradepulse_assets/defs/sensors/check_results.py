"""Latest asset-check results per (check, session), read from Dagster's event log at a cost flat in history.

Why: the exit-criteria sensor needs, for every open incident, the latest result of ~15 checks on each
affected session. Asking per partition (``get_latest_asset_check_execution_by_key`` with a partition filter)
cost one query and one SQLite connection per partition: 9 s per tick at 200 incidents. Here a tick costs:

- one query for the latest execution of *every* check key (no partition filter): its row id, status and
  creation time are the key's change signature (an execution row is updated in place when a planned check
  finishes, hence the status too);
- for the keys whose signature changed, that are asked about sessions they have not seen, or that have a
  wanted session whose latest execution is still planned (running: its row may complete in place while a
  newer row of another session is the key's latest), one query over all of them and every session any of
  them is wanted on (``dagster_internals.latest_check_executions``: what ``get_asset_check_partition_info``
  answers, which costs a query per key and, per call, a read of the latest materialisation of every asset it
  names). Once per key, those reads were 0.87 s of a 1.55 s first tick (64 keys, 25 incidents, cProfile).

The answers are kept per process (the code server evaluates every tick of a sensor) and keyed by the event
storage, so a steady tick, when no check ran, is one query whatever the number of incidents. A new process
(or another instance) starts empty and reads everything once.
"""

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dagster as dg

from tradepulse_assets.defs.dagster_internals import CheckExecutionStatus as Status
from tradepulse_assets.defs.dagster_internals import latest_check_executions


@dataclass(frozen=True)
class CheckResult:
    """The latest execution of a check on a session: ``passed`` None while planned or never run."""

    passed: bool | None
    run_id: str | None
    running: bool = False


@dataclass
class _KeyState:
    signature: tuple | None = None
    sessions: set[str] = field(default_factory=set)
    results: dict[str, CheckResult] = field(default_factory=dict)


_CACHES: dict[tuple, dict[dg.AssetCheckKey, _KeyState]] = {}
_LOCK = threading.Lock()


def _storage_identity(instance: dg.DagsterInstance) -> tuple:
    storage = instance.event_log_storage
    where = getattr(storage, "_base_dir", None) or getattr(storage, "postgres_url", None) or id(storage)
    return type(storage).__name__, str(where)


def _passed(status: Status | None) -> bool | None:
    if status is Status.SUCCEEDED:
        return True
    if status is Status.FAILED:
        return False
    return None  # planned (running), skipped or never executed


@dataclass
class TickStats:
    """What one call read: for tests and the tick benchmark (queries are what a tick costs)."""

    signature_queries: int = 0
    refresh_calls: int = 0  # latest_check_executions calls (at most one a tick)
    refreshed_keys: int = 0


def latest_check_results(
    instance: dg.DagsterInstance, wanted: Mapping[dg.AssetCheckKey, Iterable[str]], stats: TickStats | None = None
) -> dict[tuple[dg.AssetCheckKey, str], CheckResult]:
    """The latest result of every ``(check key, session)`` in ``wanted`` (a session never checked: None/None)."""
    stats = stats if stats is not None else TickStats()
    wanted = {key: set(sessions) for key, sessions in wanted.items() if sessions}
    if not wanted:
        return {}
    storage = instance.event_log_storage
    with _LOCK:
        cache = _CACHES.setdefault(_storage_identity(instance), {})
        latest = storage.get_latest_asset_check_execution_by_key(list(wanted))
        stats.signature_queries += 1
        stale = []
        for key, sessions in wanted.items():
            record = latest.get(key)
            # the creation time too: a storage wiped and recreated at the same place restarts row ids
            signature = None if record is None else (record.id, record.status.value, record.create_timestamp)
            state = cache.setdefault(key, _KeyState())
            running = any(state.results[s].running for s in sessions if s in state.results)
            if state.signature != signature or not sessions <= state.sessions or running:
                state.signature = signature
                stale.append(key)
        if stale:
            # every stale key is asked about every session asked of any of them: what a key answers about a
            # session it was not asked about is as true, and one call costs less than one per key
            sessions = set().union(*(wanted[key] | cache[key].sessions for key in stale))
            executions = latest_check_executions(instance, stale, sorted(sessions))
            stats.refresh_calls += 1
            stats.refreshed_keys += len(stale)
            for key in stale:
                cache[key].sessions, cache[key].results = set(sessions), {}
            for key, session, status, run_id in executions:
                running = status is Status.PLANNED
                cache[key].results[session] = CheckResult(_passed(status), run_id, running=running)
        return {
            (key, session): cache[key].results.get(session, CheckResult(None, None))
            for key, sessions in wanted.items()
            for session in sessions
        }


def forget_cached_results() -> None:
    """Drop every cached answer (tests; a process that knows its storage was replaced)."""
    with _LOCK:
        _CACHES.clear()
