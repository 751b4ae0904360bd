"""A delivery the publication sensor refuses (a rollback) is audited once, with the revision it refused."""

import datetime as dt

from tradepulse_assets.defs.sensors.common import audit_refusal
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import decisions
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.state import StateDB

SESSION = dt.date(2026, 3, 10)
NOW = dt.datetime(2026, 3, 10, 21, 0, tzinfo=dt.UTC)


def test_a_refused_rollback_is_audited_once_with_its_revision(tmp_path):
    view = decisions.SessionView("XNYS", SESSION, vendor_revision=1, vendor_condition="available",
                                 held_revision=2, held_digest="d" * 64)
    decision = decisions.decide_launch(view)
    assert decision.action == decisions.REFUSE
    db, audit = StateDB(f"sqlite:///{tmp_path / 'state.db'}"), AuditLog(tmp_path, clock=lambda: NOW)
    market = load_registry().get("XNYS")
    assert audit_refusal(db, audit, decision, market, SESSION, NOW, view.vendor_revision)
    assert not audit_refusal(db, audit, decision, market, SESSION, NOW, view.vendor_revision)  # once
    (event,) = audit.read()
    assert event["event"] == "landing" and event["revision"] == 1 and "rollback" in event["outcome"]
