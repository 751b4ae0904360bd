"""Nothing shared on local disk in the production profile (#14).

Beside a remote lake (S3 over HTTP, moto_server) the runbook's reports and the data-health catalog are objects
in the lake's bucket and the audit trail is rows of the state DB (SQLite and PostgreSQL); ``$TRADEPULSE_HOME``
stays empty. Beside a local lake (the embedded default) all three stay where the runbook points: under the home.
"""

import datetime as dt
import functools

import duckdb
import pytest

from tradepulse_assets.cli.sql_cmd import run_query
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.reports import incident_dir
from tradepulse_assets.markets import calendar_for
from tradepulse_assets.pipeline.response import Responder
from tradepulse_assets.quality import run_gate_suite
from tradepulse_assets.quality.catalog import health_catalog_for
from tradepulse_assets.storage.audit import AuditLog, InvalidAuditEvent, StateAuditLog, audit_log_for
from tradepulse_assets.storage.home import AUDIT_LOG, HEALTH_CATALOG
from tradepulse_assets.storage.object_store import LocalObjectStore, runbook_store
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.incidents.db_support import BACKENDS, db_target
from tradepulse_assets_tests.quality.synth import clean_session
from tradepulse_assets_tests.storage.conftest import s3_store

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
DAY = dt.date(2026, 3, 10)


@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "home"
    monkeypatch.setenv("TRADEPULSE_HOME", str(path))
    return path


def landing_event(session: str, outcome: str = "landed", batch: str = "b1") -> dict:
    return {"event": "landing", "market": "XNYS", "session": session, "batch": batch, "rows": 10,
            "sha256": "a" * 64, "outcome": outcome}


@functools.cache
def gate_results(day: dt.date):
    return run_gate_suite(clean_session("XNYS", day), calendar_for("XNYS", "XNYS"), day)


def test_on_s3_reports_and_the_health_catalog_go_to_the_bucket_and_nothing_to_the_home(home, tmp_path, s3_endpoint):
    lake = s3_store(s3_endpoint, prefix="tradepulse")
    assert runbook_store(lake) is lake
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    assert Responder(db, lake, None, lambda: NOW).engine.artefacts is lake
    engine = IncidentEngine(db, artefacts=runbook_store(lake))
    incident, _ = engine.detect("checksum_mismatch", "XNYS", now=NOW, sessions=[DAY.isoformat()])
    engine.record_backfill(incident.id, "XNYS", DAY.isoformat(), 10, 10, True, now=NOW, run_id="r1")
    keys = lake.list_keys("reports/")
    assert f"{incident_dir(incident)}/timeline.md" in keys
    assert any(k.startswith(f"reports/backfill/{incident.id}/") for k in keys)

    catalog = health_catalog_for(lake)
    key = catalog.write("XNYS", DAY, gate_results(DAY), NOW, "run-1")
    assert key == f"{HEALTH_CATALOG}/market=XNYS/session={DAY}.parquet" and lake.exists(key)
    con = duckdb.connect()
    columns, rows = run_query(con, lake, "SELECT market, session, count(*), bool_and(passed) FROM data_health "
                                         "GROUP BY ALL", None)
    assert rows == [("XNYS", DAY, len(gate_results(DAY)), True)]
    assert not home.exists() or not any(home.iterdir()), list(home.rglob("*"))


def test_in_the_embedded_default_reports_catalog_and_audit_stay_under_the_home(home, tmp_path):
    lake = LocalObjectStore(home / "store")
    assert runbook_store(lake).root == home.resolve()
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    engine = IncidentEngine(db, artefacts=runbook_store(lake))
    incident, _ = engine.detect("checksum_mismatch", "XNYS", now=NOW, sessions=[DAY.isoformat()])
    assert (home / incident_dir(incident) / "timeline.md").is_file()
    health_catalog_for(lake).write("XNYS", DAY, gate_results(DAY), NOW, "run-1")
    assert (home / HEALTH_CATALOG / "market=XNYS" / f"session={DAY}.parquet").is_file()
    audit = audit_log_for(lake, db, clock=lambda: NOW)
    assert isinstance(audit, AuditLog)
    audit.append(landing_event(DAY.isoformat()))
    assert (home / AUDIT_LOG).is_file()
    assert not lake.list_keys("")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_state_db_audit_trail_keeps_order_filters_and_refuses_bad_groups(backend, home, tmp_path,
                                                                             s3_endpoint):
    with db_target(backend, tmp_path) as target:
        db = StateDB(target.url)
        audit = audit_log_for(s3_store(s3_endpoint), db, clock=lambda: NOW)
        assert isinstance(audit, StateAuditLog)
        audit.append_many([landing_event("2026-03-09"), landing_event("2026-03-10", batch="b2")])
        later = NOW + dt.timedelta(hours=1)
        audit.append({**landing_event("2026-03-10", "quarantined", batch="b3"), "time": later})
        with pytest.raises(InvalidAuditEvent, match="sha256"):
            audit.append_many([landing_event("2026-03-11"), {**landing_event("2026-03-11"), "sha256": "x"}])

        # A second writer (another machine: its own StateDB) sees every row, in writer order.
        everything = StateAuditLog(StateDB(target.url)).read()
        assert [e["batch"] for e in everything] == ["b1", "b2", "b3"]
        assert [e["batch"] for e in audit.read(session=dt.date(2026, 3, 10))] == ["b2", "b3"]
        assert [e["batch"] for e in audit.read(since=later)] == ["b3"]
        assert [e["batch"] for e in audit.read(outcome="landed", until=later)] == ["b1", "b2"]
        assert everything[2]["time"] == "2026-03-10T16:00:00Z"
        assert not (home / AUDIT_LOG).exists()
        db.close()
