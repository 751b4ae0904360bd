"""The weekly incident review job writes the same report as ``incident review``, with stage times."""

import datetime as dt

from tradepulse_assets.defs.resources import ClockResource, ObjectStoreResource, StateResource
from tradepulse_assets.defs.review import incident_review_job
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.review import stage_minutes
from tradepulse_assets.storage.state import StateDB

T0 = dt.datetime(2026, 3, 9, 15, 0, tzinfo=dt.UTC)


def test_weekly_review_lists_stage_times_and_overdue_followups(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = IncidentEngine(StateDB(url), markets=["XNYS"])
    incident, _ = engine.detect("lag_breach", "XNYS", now=T0)
    engine.start_recovery(incident.id, now=T0 + dt.timedelta(minutes=6), message="backfill")
    resolved = engine.resolve(
        incident.id,
        now=T0 + dt.timedelta(minutes=45),
        root_cause="r",
        owners=["ops"],
        actions=["a"],
        force=True,
    )
    assert stage_minutes(resolved) == {"contain": 0.0, "recover": 6.0, "validate": None, "resolve": 45.0}

    result = incident_review_job.execute_in_process(
        resources={
            "state": StateResource(url=url),
            "object_store": ObjectStoreResource(url=str(tmp_path / "home" / "store")),
            "clock": ClockResource(spec="fixed:2026-03-30T07:00:00+00:00"),
        }
    )
    assert result.success
    text = (tmp_path / "home" / "reports" / "incidents" / "reviews" / "2026-03-30.md").read_text()
    assert f"| {incident.id} | lag_breach | XNYS | resolved | 2026-03-09 15:00 | 0 | 6 | - | 45 |" in text
    assert text.count("**OVERDUE**") == 3 and "6.3 chaos replay lag_breach:XNYS" in text
