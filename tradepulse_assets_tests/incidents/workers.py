"""Functions run in spawned processes by the concurrency tests (importable, so ``spawn`` can find them).

Each waits on a shared barrier so the processes hit the database at the same moment.
"""

import datetime as dt

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def _wait(barrier) -> None:
    if barrier is not None:
        barrier.wait(timeout=120)


def open_same_fault(url: str, worker: int, repeats: int, barrier) -> list[tuple[str, bool]]:
    """Report the same fault ``repeats`` times; returns ``(incident id, opened)`` per report."""
    from tradepulse_assets.incidents.store import IncidentStore
    from tradepulse_assets.storage.state import StateDB

    store = IncidentStore(StateDB(url))
    _wait(barrier)
    out = []
    for i in range(repeats):
        incident, opened = store.open_or_join("lag_breach", "XNYS", now=T0 + dt.timedelta(seconds=i),
                                              description=f"worker {worker} report {i}")
        out.append((incident.id, opened))
    return out


def open_distinct_faults(url: str, worker: int, count: int, barrier) -> list[str]:
    """Open ``count`` incidents with fingerprints no other worker uses; returns their ids."""
    from tradepulse_assets.incidents.store import IncidentStore
    from tradepulse_assets.storage.state import StateDB

    store = IncidentStore(StateDB(url))
    _wait(barrier)
    return [store.open_or_join("quality_gate", f"M{worker}X{i}", now=T0)[0].id for i in range(count)]


def flip_toggle(url: str, incident_id: str, flips: int, end_paused: bool, barrier) -> None:
    """Pause and resume the XNYS feature-store writer ``flips`` times as ``incident_id``."""
    from tradepulse_assets.incidents.control_plane import FEATURE_STORE_WRITER, ControlPlane
    from tradepulse_assets.storage.state import StateDB

    control = ControlPlane(StateDB(url))
    _wait(barrier)
    for i in range(flips):
        now = T0 + dt.timedelta(seconds=i)
        control.pause("XNYS", FEATURE_STORE_WRITER, reason="flip", now=now, incident_id=incident_id)
        control.resume("XNYS", FEATURE_STORE_WRITER, reason="flop", now=now, incident_id=incident_id)
    if end_paused:
        control.pause("XNYS", FEATURE_STORE_WRITER, reason="final", now=T0, incident_id=incident_id)


def increment(url: str, times: int, barrier) -> None:
    """Read-modify-write a watermark ``times`` times inside write transactions (lost updates would show)."""
    from tradepulse_assets.storage.state import StateDB

    db = StateDB(url)
    _wait(barrier)
    for _ in range(times):
        with db.transaction() as tx:
            tx.lock("counter")
            row = tx.query_one("SELECT value FROM watermarks WHERE name = 'counter'")
            value = int(row["value"]) + 1 if row else 1
            tx.execute(
                "INSERT INTO watermarks (name, value) VALUES ('counter', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(value),),
            )
