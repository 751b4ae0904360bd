"""A drill's state DB: its own incident-id space, quiet unless asked, drill-marked when it does send."""

import datetime as dt

from tradepulse_assets.drills.sandbox import new_replay_id, prepare_drill_state, sandbox_environment
from tradepulse_assets.incidents.communications import IncidentBrief, Stage, messages_for
from tradepulse_assets.incidents.notifications import notifications_for
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply

NOW = dt.datetime(2026, 3, 10, 20, 5, tzinfo=dt.UTC)


def settings_in(root) -> Settings:
    return Settings.embedded(root / "home", vendor_source=root / "vendor")


def test_two_replays_of_the_same_day_never_share_an_incident_id(tmp_path):
    ids = []
    for name in ("a", "b"):
        db = prepare_drill_state(settings_in(tmp_path / name), replay_id=new_replay_id())
        incident, _ = IncidentStore(db).open_or_join("checksum_mismatch", "XNYS", now=NOW)
        ids.append(incident.id)
    assert ids[0] != ids[1] and all(i.startswith("DRILL-") and i.endswith("-20260310-0001") for i in ids)


def test_a_notify_drill_sends_marked_messages_with_the_drill_routing_key(tmp_path):
    db = prepare_drill_state(settings_in(tmp_path), replay_id="r1", notify=True)
    with CaptureServer({"/v2/enqueue": [Reply(202, {"status": "success"})]}) as srv:
        env = {
            "TRADEPULSE_PAGERDUTY_EVENTS_URL": srv.url("/v2/enqueue"),
            "TRADEPULSE_PAGERDUTY_ROUTING_KEY": "LIVEKEY00000000000000000000000000",
            "TRADEPULSE_PAGERDUTY_DRILL_ROUTING_KEY": "DRILLKEY0000000000000000000000000",
        }
        notifications = notifications_for(db, tmp_path / "outbox.jsonl", env=env, clock=lambda: NOW)
        (page, _slack) = notifications.post(
            messages_for(Stage.DETECTION, IncidentBrief("DRILL-r1-1", ("XNYS",)))
        )
        assert page.drill and page.status == "pending"
        assert [e.id for e in notifications.deliver_due().delivered] == [page.id]
        (sent,) = [r.json for r in srv.requests_to("/v2/enqueue")]
    assert sent["routing_key"] == "DRILLKEY0000000000000000000000000"
    assert sent["payload"]["summary"].startswith("[DRILL] ") and sent["client"].endswith("DRILL")


def test_the_sandbox_environment_is_restored(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEPULSE_HOME", "/production")
    monkeypatch.delenv("TRADEPULSE_STATE_DB_URL", raising=False)
    import os

    with sandbox_environment(settings_in(tmp_path)):
        assert os.environ["TRADEPULSE_HOME"] == str(tmp_path / "home")
        assert os.environ["TRADEPULSE_STATE_DB_URL"].startswith("sqlite:///")
    assert os.environ["TRADEPULSE_HOME"] == "/production" and "TRADEPULSE_STATE_DB_URL" not in os.environ
