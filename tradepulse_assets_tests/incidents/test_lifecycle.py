"""The incident lifecycle over the store and control plane (both backends)."""

import datetime as dt

import pytest

from tradepulse_assets.incidents import exit_criteria as ec
from tradepulse_assets.incidents.control_plane import BACKTEST_EXPORTER, FEATURE_STORE_WRITER, STRATEGY_PROMOTIONS
from tradepulse_assets.incidents.model import ExitCriteriaNotMet, GapWindow, IllegalTransition, IncidentState
from tradepulse_assets_tests.incidents.conftest import T0

S = IncidentState
MIN = dt.timedelta(minutes=1)
GAP = GapWindow("XNYS", T0 - 60 * MIN, T0 - 30 * MIN, 30, session="2026-03-09")


def test_illegal_transitions_raise_and_legal_ones_are_stamped(engine):
    store = engine.store
    incident, _ = store.open_or_join("schema_mismatch", "XLON", now=T0)
    with pytest.raises(IllegalTransition, match="detected -> resolved; allowed: contained"):
        store.transition(incident.id, S.RESOLVED, now=T0)
    for i, state in enumerate((S.CONTAINED, S.RECOVERING, S.VALIDATING, S.RECOVERING, S.VALIDATING, S.RESOLVED)):
        incident = store.transition(incident.id, state, now=T0 + i * MIN)
    assert incident.resolved_at == T0 + 5 * MIN and incident.contained_at == T0
    with pytest.raises(IllegalTransition, match="none \\(terminal\\)"):
        store.transition(incident.id, S.RECOVERING, now=T0)


def test_repeated_detection_joins_and_a_resolved_fault_opens_a_new_incident(engine):
    first, opened = engine.detect("lag_breach", "XNYS", now=T0, gaps=[GAP])
    joined, opened_again = engine.detect("lag_breach", "XNYS", now=T0 + MIN, symbols=["NYS001"])
    other, opened_other = engine.detect("lag_breach", "XLON", now=T0 + MIN)
    assert (opened, opened_again, opened_other) == (True, False, True)
    assert joined.id == first.id == "INC-20260309-0001" and other.id == "INC-20260309-0002"
    assert joined.detections == 2 and joined.scope.symbols == ("NYS001",)
    engine.resolve(first.id, now=T0 + 2 * MIN, root_cause="r", owners=["o"], actions=["a"], force=True)
    reopened, opened_new = engine.detect("lag_breach", "XNYS", now=T0 + 3 * MIN)
    assert opened_new and reopened.id == "INC-20260309-0003"


def test_detection_contains_and_validation_resumes_consumers_but_not_promotions(engine, db):
    incident, _ = engine.detect("checksum_mismatch", "XNYS", now=T0, gaps=[GAP])
    assert incident.state is S.CONTAINED
    control = engine.control
    assert all(control.is_paused("XNYS", t) for t in (FEATURE_STORE_WRITER, BACKTEST_EXPORTER, STRATEGY_PROMOTIONS))
    assert not control.is_paused("XLON", FEATURE_STORE_WRITER)

    engine.start_recovery(incident.id, now=T0 + MIN, message="backfill launched")
    engine.record_backfill(incident.id, "XNYS", "2026-03-09", 1950, 1950, True, now=T0 + 2 * MIN, run_id="b1")
    for i in range(0, 11):
        db.record_lag("XNYS", T0 + i * MIN, 30.0, None)
    evidence = engine.gather_evidence(incident.id, now=T0 + 10 * MIN, sla_seconds={"XNYS": 300})
    assert evidence.affected_partitions == (("XNYS", "2026-03-09"),)
    evaluation = engine.evaluate(incident.id, evidence)
    assert evaluation.automatic_met and not evaluation.all_met
    assert engine.store.get(incident.id).state is S.VALIDATING
    assert not control.is_paused("XNYS", FEATURE_STORE_WRITER) and not control.is_paused("XNYS", BACKTEST_EXPORTER)
    assert control.promotions_frozen("XNYS")
    assert engine.store.gap_windows(incident.id)[0].status == "reconciled"


def test_a_regression_during_validation_goes_back_to_recovering_and_pauses_again(engine, db):
    incident, _ = engine.detect("quality_gate", "XNYS", now=T0, sessions=["2026-03-09"])
    engine.record_backfill(incident.id, "XNYS", "2026-03-09", 1950, 1950, True, now=T0 + MIN)
    for i in range(0, 11):
        db.record_lag("XNYS", T0 + i * MIN, 30.0, None)
    ok = ec.CheckOutcome("dst_alignment", "XNYS", "2026-03-09", True)
    kw = dict(sla_seconds={"XNYS": 300}, required_quality_checks=["dst_alignment"])
    engine.evaluate(incident.id, engine.gather_evidence(incident.id, now=T0 + 10 * MIN, quality=[ok], **kw))
    engine.evaluate(incident.id, engine.gather_evidence(incident.id, now=T0 + 10 * MIN, quality=[ok], **kw))
    assert engine.store.get(incident.id).state is S.VALIDATING
    bad = ec.CheckOutcome("dst_alignment", "XNYS", "2026-03-09", False, "run-9")
    engine.evaluate(incident.id, engine.gather_evidence(incident.id, now=T0 + 11 * MIN, quality=[bad], **kw))
    incident = engine.store.get(incident.id)
    assert incident.state is S.RECOVERING
    assert engine.control.is_paused("XNYS", FEATURE_STORE_WRITER)
    assert incident.last_evaluation["criteria"][2]["evidence"]["failed"][0]["run_id"] == "run-9"


def test_two_incidents_hold_a_consumer_until_both_release_it(engine):
    a, _ = engine.detect("lag_breach", "XNYS", now=T0)
    b, _ = engine.detect("schema_mismatch", "XNYS", now=T0)
    engine.control.release_incident(a.id, reason="a done", now=T0 + MIN)
    assert engine.control.is_paused("XNYS", FEATURE_STORE_WRITER)
    assert [h.holder for h in engine.control.toggle_status("XNYS", FEATURE_STORE_WRITER).holds] == [b.id]
    engine.control.resume("XNYS", FEATURE_STORE_WRITER, reason="operator override", now=T0 + 2 * MIN)
    assert not engine.control.is_paused("XNYS", FEATURE_STORE_WRITER)
    assert any("operator override" in e.message for e in engine.store.events(b.id))


def test_resolve_refuses_until_criteria_hold_then_schedules_the_chaos_replay(engine):
    incident, _ = engine.detect("lag_breach", "XNYS", now=T0)
    with pytest.raises(ExitCriteriaNotMet, match="never evaluated"):
        engine.resolve(incident.id, now=T0 + MIN, root_cause="r", owners=["o"], actions=["a"])
    engine.evaluate(incident.id, engine.gather_evidence(incident.id, now=T0 + MIN, sla_seconds={"XNYS": 300}))
    with pytest.raises(ExitCriteriaNotMet) as err:
        engine.resolve(incident.id, now=T0 + MIN, root_cause="r", owners=["o"], actions=["a"])
    assert err.value.unmet == (ec.STABLE, ec.SIGNOFF) and "no lag samples" in str(err.value)
    resolved = engine.resolve(incident.id, now=T0 + 2 * MIN, root_cause="r", owners=["o"], actions=["a"], force=True)
    assert resolved.state is S.RESOLVED and resolved.owners == ("o",)
    assert not engine.control.promotions_frozen("XNYS")
    state_event = [e for e in engine.store.events(incident.id) if e.kind == "state"][-1]
    assert state_event.data["forced"] is True and "ingestion_stable" in state_event.message
    [followup] = engine.store.followups(incident.id)
    assert followup.scenario == "lag_breach:XNYS" and followup.due_at == T0 + 2 * MIN + dt.timedelta(days=30)
    assert engine.due_followups(T0 + dt.timedelta(days=29)) == []
    assert engine.due_followups(T0 + dt.timedelta(days=31)) == [followup]


def test_notes_quarantine_and_baselines_are_kept_and_timelined(engine):
    incident, _ = engine.detect("checksum_mismatch", "XHKG", now=T0)
    store = engine.store
    store.note(incident.id, now=T0 + MIN, vendor_ref="VND-4411", text="vendor acknowledged")
    store.note(incident.id, now=T0 + MIN, vendor_ref="VND-4411")
    store.add_quarantined_batch(incident.id, batch_id="b-1", market="XHKG", session="2026-03-09",
                                location="quarantine/INC/b-1", reason="sha256 mismatch", now=T0 + MIN)
    store.add_baseline(incident.id, market="XHKG", indicator="hurst", reference="lake/features/hurst@run-7",
                       now=T0 + MIN)
    assert store.get(incident.id).vendor_refs == ("VND-4411",)
    assert [q.batch_id for q in store.quarantined_batches(incident.id)] == ["b-1"]
    assert store.baselines(incident.id)[0].reference == "lake/features/hurst@run-7"
    kinds = [e.kind for e in store.events(incident.id)]
    assert kinds.count("vendor_ref") == 2 and "quarantine" in kinds and "baseline" in kinds
