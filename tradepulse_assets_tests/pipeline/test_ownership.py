"""One owner per (market, session) and revisions in order, on SQLite and PostgreSQL; the landing race."""

import datetime as dt
import json
import threading

import pytest

from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.manifest import MANIFEST_NAME
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.ownership import AlreadyLanded, LeaseHeld, RevisionRefused, SessionLedger
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB

UTC = dt.timezone.utc
XNYS = load_registry().get("XNYS")
SESSION = dt.date(2026, 3, 10)
NOW = dt.datetime(2026, 3, 10, 23, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self):
        self.now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


def test_a_lease_has_one_holder_until_released_expired_or_its_holder_is_gone(db):
    clock = FakeClock()
    ledger = SessionLedger(db, now=clock)
    assert ledger.try_acquire("XNYS", SESSION, "run:a", ttl=dt.timedelta(minutes=5))
    assert ledger.try_acquire("XNYS", SESSION, "run:b") is None
    assert ledger.try_acquire("XNYS", SESSION, "run:a")  # the holder renews
    assert ledger.try_acquire("XNYS", dt.date(2026, 3, 11), "run:b")  # another session: its own lease
    with pytest.raises(LeaseHeld, match="owned by run:a"):
        ledger.acquire("XNYS", SESSION, "run:b", wait=dt.timedelta(seconds=0.3), poll_seconds=0.1)
    # A finished run no longer owns anything, even before expiry.
    assert ledger.try_acquire("XNYS", SESSION, "run:b", is_alive=lambda holder: holder != "run:a")
    assert not ledger.release("XNYS", SESSION, "run:a")  # only the holder releases
    clock.now += dt.timedelta(minutes=20)  # a crashed holder: its lease expired
    assert ledger.try_acquire("XNYS", SESSION, "cli:1")
    assert ledger.release("XNYS", SESSION, "cli:1") and ledger.holder("XNYS", SESSION) is None


def test_production_revision_moves_only_forward_and_only_for_the_holder(db):
    ledger = SessionLedger(db)
    ledger.acquire("XNYS", SESSION, "run:a")
    ledger.record_promotion("XNYS", SESSION, 2, "b" * 64, "run:a")
    with pytest.raises(RevisionRefused, match="rollback"):
        ledger.record_promotion("XNYS", SESSION, 1, "a" * 64, "run:a")
    ledger.check_revision("XNYS", SESSION, 2, "b" * 64)  # the same delivery again: fine
    with pytest.raises(LeaseHeld):
        ledger.record_promotion("XNYS", SESSION, 3, "d" * 64, "run:b")
    assert ledger.held_revision("XNYS", SESSION).revision == 2


def test_a_launch_overtaken_by_a_landing_of_the_same_delivery_has_nothing_to_do(db):
    clock = FakeClock()
    ledger = SessionLedger(db, now=clock)
    first_click, second_click = clock.now, clock.now + dt.timedelta(seconds=1)
    clock.now += dt.timedelta(minutes=1)  # the first run landed while the second waited for the lease
    ledger.acquire("XNYS", SESSION, "run:a")
    ledger.record_promotion("XNYS", SESSION, 1, "a" * 64, "run:a")
    ledger.release("XNYS", SESSION, "run:a")
    for launched in (first_click, second_click):
        with pytest.raises(AlreadyLanded, match="landed by run:a"):
            ledger.check_not_overtaken("XNYS", SESSION, 1, "a" * 64, launched)
    ledger.check_not_overtaken("XNYS", SESSION, 1, "a" * 64, clock.now + dt.timedelta(seconds=1))  # a re-run
    ledger.check_not_overtaken("XNYS", SESSION, 1, "c" * 64, first_click)  # other bytes: the revision rule
    ledger.check_not_overtaken("XNYS", SESSION, 2, "a" * 64, first_click)  # decides those


def test_a_run_overtaken_at_landing_writes_nothing_and_says_so_in_the_audit(tmp_path, db):
    vendor, store = tmp_path / "vendor", LocalObjectStore(tmp_path / "store")
    publish(vendor)
    ledger, audit = SessionLedger(db), AuditLog(tmp_path / "home")
    launched = dt.datetime.now(UTC)
    ingest.ingest_session_exclusively(DirectoryConnector(vendor), store, audit, ledger, XNYS, SESSION, NOW, "run:a")
    before = {k: store.get_bytes(k) for k in store.list_keys("")}
    guard = ingest.ledger_guard(ledger, "XNYS", SESSION, launched_at=launched)
    with pytest.raises(AlreadyLanded):
        ingest.land_session(DirectoryConnector(vendor), store, audit, XNYS, SESSION, NOW, guard=guard)
    assert {k: store.get_bytes(k) for k in store.list_keys("")} == before
    assert audit.read()[-1]["outcome"].startswith("skipped: XNYS 2026-03-10: production already holds")


def publish(vendor, *faults):
    scenario = Scenario("race", "race", tuple(faults))
    Publisher(drop_store(str(vendor)), seed=7, scenarios=(scenario,)).publish_session("XNYS", SESSION)


@pytest.fixture(scope="module")
def two_revisions(tmp_path_factory):
    """The same session as the vendor served it before (r1) and after (r2) a restatement."""
    root = tmp_path_factory.mktemp("vendors")
    publish(root / "r1")
    publish(root / "r2", FaultSpec("restatement", "XNYS", SESSION, SESSION, {"symbols": 2, "pct": 0.5}))
    return DirectoryConnector(root / "r1"), DirectoryConnector(root / "r2")


def consistent_state(store, ledger) -> tuple[int, int, int, bool]:
    """(ledger revision, receipt revision, the receipt's raw manifest revision, production == the revision's
    bars)."""
    held = ledger.held_revision("XNYS", SESSION)
    receipt = ingest.read_receipt(store, "XNYS", SESSION)
    raw = json.loads(store.get_bytes(f"{receipt['delivery_prefix']}/{MANIFEST_NAME}"))
    production = lake.read_frame(store, "production", "XNYS", SESSION)
    landing = lake.read_frame(store, "landing", "XNYS", SESSION)
    return held.revision, receipt["revision"], raw["revision"], production.equals(ingest.normalise(landing))


def race_once(tmp_path, url, connectors, attempt: int):
    store = LocalObjectStore(tmp_path / f"store-{attempt}")
    audit = AuditLog(tmp_path / "home", clock=lambda: NOW)
    db = StateDB(url)
    ledger = SessionLedger(db)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def landing(connector, holder):
        try:
            barrier.wait()
            ledger = SessionLedger(StateDB(url))
            ingest.ingest_session_exclusively(connector, store, audit, ledger, XNYS, SESSION, NOW, holder,
                                              wait=dt.timedelta(seconds=60), is_backfill=True)
        except RevisionRefused:
            pass  # the older revision came second: refused, nothing written
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=landing, args=(c, f"try{attempt}:{i}")) for i, c in enumerate(connectors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # Leases and revisions are per session and table-wide: clear this session's rows for the next try.
    state = consistent_state(store, ledger)
    db.execute("DELETE FROM production_revisions")
    return state


@pytest.mark.slow
@pytest.mark.parametrize("tries", [40])
def test_two_landings_of_one_session_end_consistent(tmp_path, target, two_revisions, tries):
    """The race of issue #10 (26 of 40 inconsistent before): r1 and r2 land at once; every try ends with
    production, the receipt and the raw manifest on r2, and production equal to r2's bars."""
    outcomes = [race_once(tmp_path, target.url, two_revisions, i) for i in range(tries)]
    assert outcomes == [(2, 2, 2, True)] * tries


def test_a_rollback_is_refused_and_audited_and_changes_nothing(tmp_path, two_revisions):
    r1, r2 = two_revisions
    store = LocalObjectStore(tmp_path / "store")
    audit = AuditLog(tmp_path / "home", clock=lambda: NOW)
    ledger = SessionLedger(StateDB(f"sqlite:///{tmp_path / 'state.db'}"))
    done = ingest.ingest_session_exclusively(r2, store, audit, ledger, XNYS, SESSION, NOW, "run:r2",
                                             is_backfill=True)
    assert done.promoted_rows == 24 * 390
    before = store.get_bytes(lake.partition_key("production", "XNYS", SESSION))
    with pytest.raises(RevisionRefused, match="older than revision 2"):
        ingest.ingest_session_exclusively(r1, store, audit, ledger, XNYS, SESSION, NOW, "run:r1")
    assert store.get_bytes(lake.partition_key("production", "XNYS", SESSION)) == before
    assert consistent_state(store, ledger) == (2, 2, 2, True)
    assert audit.read()[-1]["outcome"].startswith("refused: XNYS 2026-03-10: revision 1 is older")
    assert ledger.holder("XNYS", SESSION) is None  # the refused landing gave the lease back
