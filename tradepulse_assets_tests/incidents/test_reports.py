"""Artefacts at the runbook's paths, with exact content where a person or a tool reads them."""

import datetime as dt
import json

import pytest

from tradepulse_assets.incidents.signoff import Signoffs
from tradepulse_assets.incidents.model import GapWindow
from tradepulse_assets.incidents.reports import fmt_duration
from tradepulse_assets_tests.incidents.conftest import T0

MIN = dt.timedelta(minutes=1)


@pytest.fixture(params=["sqlite"])
def target(request, tmp_path):  # artefact content does not depend on the database backend
    from tradepulse_assets_tests.incidents.db_support import db_target

    with db_target(request.param, tmp_path) as t:
        yield t


def test_timeline_and_gap_csv_follow_the_incident(engine, home):
    gaps = [GapWindow("XNYS", T0 - 60 * MIN, T0 - 45 * MIN, 15, session="2026-03-09"),
            GapWindow("XLON", T0 - 90 * MIN, T0 - 89 * MIN, 1, session="2026-03-09")]
    incident, _ = engine.detect("lag_breach", "XNYS", now=T0, gaps=gaps, description="XNYS bars stopped at 14:00")
    engine.store.note(incident.id, now=T0 + MIN, vendor_ref="VND-77")
    engine.write_artefacts(incident.id)
    base = home.root / "reports" / "incidents" / "data" / f"2026-03-09-{incident.id}"

    assert (base / "gap.csv").read_text() == (
        "market,start,end,missing_minutes,status\n"
        "XLON,2026-03-09T13:30:00Z,2026-03-09T13:31:00Z,1,open\n"
        "XNYS,2026-03-09T14:00:00Z,2026-03-09T14:15:00Z,15,open\n"
    )
    timeline = (base / "timeline.md").read_text()
    assert timeline.startswith(f"# Incident {incident.id}\n")
    assert "- **Cause:** lag_breach" in timeline and "- **State:** contained" in timeline
    assert "- **Markets:** XLON, XNYS" in timeline and "- **Vendor references:** VND-77" in timeline
    for event in engine.store.events(incident.id):
        assert f"| {event.at:%Y-%m-%dT%H:%M:%SZ} | {event.kind} | {event.message} |" in timeline
    assert "_Not evaluated yet._" in timeline
    assert not (base / "postmortem.md").exists()


def test_backfill_reports_per_partition_and_summary(engine, home):
    incident, _ = engine.detect("lag_breach", "XNYS", now=T0)
    engine.record_backfill(incident.id, "XNYS", "2026-03-09", 1950, 1950, True, now=T0 + MIN, run_id="r1")
    engine.record_backfill(incident.id, "XNYS", "2026-03-10", 1940, 1950, True, now=T0 + MIN, run_id="r2")
    base = home.root / "reports" / "backfill" / incident.id
    report = json.loads((base / "XNYS-2026-03-10.json").read_text())
    assert (report["rows"], report["vendor_rows"], report["verdict"]) == (1940, 1950, "row_mismatch")
    assert (base / "summary.csv").read_text() == (
        "market,session,rows,vendor_rows,checksums_ok,verdict,run_id,recorded_at\n"
        "XNYS,2026-03-09,1950,1950,true,reconciled,r1,2026-03-09T15:01:00Z\n"
        "XNYS,2026-03-10,1940,1950,true,row_mismatch,r2,2026-03-09T15:01:00Z\n"
    )


def test_postmortem_draft_on_resolve_with_detect_contain_recover_times(engine, home, db):
    gap = GapWindow("XNYS", T0 - 20 * MIN, T0 - 10 * MIN, 10, session="2026-03-09")
    incident, _ = engine.detect("lag_breach", "XNYS", now=T0, gaps=[gap])
    engine.record_backfill(incident.id, "XNYS", "2026-03-09", 1950, 1950, True, now=T0 + MIN)
    for i in range(0, 13):
        db.record_lag("XNYS", T0 + i * MIN, 20.0, None)
    engine.evaluate(incident.id, engine.gather_evidence(incident.id, now=T0 + 12 * MIN, sla_seconds={"XNYS": 300}))
    Signoffs(db).record(incident.id, owner="quant-strategies", note="signals within tolerance", now=T0 + 29 * MIN)
    engine.resolve(incident.id, now=T0 + 30 * MIN, root_cause="Vendor gateway dropped the session",
                   owners=["data-platform", "vendor-mgmt"], actions=["alert on silent gateways"])
    text = (home.root / "reports" / "incidents" / "data" / f"2026-03-09-{incident.id}" / "postmortem.md").read_text()
    assert "| Time to detect | 20m00s |" in text
    assert "| Time to contain | 0m00s |" in text
    assert "| Time to recover | 12m00s |" in text
    assert "| Time to resolve | 30m00s |" in text
    assert "Vendor gateway dropped the session" in text and "- data-platform\n- vendor-mgmt" in text
    assert "- alert on silent gateways" in text and "| ingestion_stable | automatic | met |" in text


def test_duration_format():
    assert [fmt_duration(s) for s in (None, 59, 3600 + 62)] == ["-", "0m59s", "1h01m02s"]
