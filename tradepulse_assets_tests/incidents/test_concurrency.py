"""Several processes (spawn: fresh interpreters, like the daemon, run workers and the CLI) write the
same state database at once: one incident per fault, unique ids, consistent toggles."""

import multiprocessing as mp
import signal
from collections import Counter

from tradepulse_assets.incidents.control_plane import FEATURE_STORE_WRITER, ControlPlane
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.incidents import workers

PROCESSES = 4


def _run(fn, arg_lists):
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(arg_lists))
        # workers answer Pool.terminate's SIGTERM even if this process ignores it
        default_sigterm = dict(initializer=signal.signal, initargs=(signal.SIGTERM, signal.SIG_DFL))
        with ctx.Pool(len(arg_lists), **default_sigterm) as pool:
            results = [pool.apply_async(fn, (*args, barrier)) for args in arg_lists]
            return [r.get(timeout=240) for r in results]


def test_concurrent_reports_of_one_fault_open_exactly_one_incident(target):
    StateDB(target.url)  # schema first, so workers race on incidents rather than on DDL
    results = _run(workers.open_same_fault, [(target.url, w, 5) for w in range(PROCESSES)])
    reports = [r for worker in results for r in worker]
    assert len({incident_id for incident_id, _ in reports}) == 1
    assert sum(opened for _, opened in reports) == 1
    store = IncidentStore(StateDB(target.url))
    [incident] = store.list()
    assert incident.detections == PROCESSES * 5
    kinds = Counter(e.kind for e in store.events(incident.id))
    assert kinds["opened"] == 1 and kinds["detection_repeated"] == PROCESSES * 5 - 1


def test_concurrently_opened_incidents_get_unique_sequential_ids(target):
    StateDB(target.url)
    results = _run(workers.open_distinct_faults, [(target.url, w, 5) for w in range(PROCESSES)])
    ids = [i for worker in results for i in worker]
    assert len(ids) == len(set(ids)) == PROCESSES * 5
    assert sorted(ids) == [f"INC-20260309-{n:04d}" for n in range(1, PROCESSES * 5 + 1)]


def test_toggles_flipped_concurrently_stay_consistent(target):
    db = StateDB(target.url)
    store = IncidentStore(db)
    incident_ids = [store.open_or_join("quality_gate", f"M{w}", now=workers.T0)[0].id for w in range(PROCESSES)]
    flips = 6
    _run(workers.flip_toggle, [(target.url, inc, flips, w % 2 == 0) for w, inc in enumerate(incident_ids)])

    control = ControlPlane(db)
    status = control.toggle_status("XNYS", FEATURE_STORE_WRITER)
    # The workers that ended with a pause hold the toggle; nobody else does.
    assert {h.holder for h in status.holds} == {inc for w, inc in enumerate(incident_ids) if w % 2 == 0}
    assert status.paused and control.is_paused("XNYS", FEATURE_STORE_WRITER)
    # Replaying the history in commit order reproduces every recorded state: no lost or torn update.
    history = control.history("XNYS", FEATURE_STORE_WRITER)
    assert len(history) == PROCESSES * flips * 2 + PROCESSES // 2
    holders: set[str] = set()
    for event in history:
        (holders.add if event["action"] == "pause" else holders.discard)(event["holder"])
        assert event["paused_after"] == bool(holders)
    # Each flip is on the flipping incident's timeline.
    for inc in incident_ids:
        assert sum(e.kind == "control" for e in store.events(inc)) >= flips * 2
