"""The self-healing loop's decisions, rule by rule, without an instance."""

import datetime as dt
from dataclasses import replace

import pytest

from tradepulse_assets.pipeline import decisions as d

SESSION = dt.date(2026, 3, 10)


def view(**kw) -> d.SessionView:
    base = dict(market="XNYS", session=SESSION, vendor_revision=1, vendor_condition="available",
                vendor_digest="a" * 64)
    return d.SessionView(**{**base, **kw})


def test_unpublished_session_waits_for_the_vendor():
    assert d.decide_launch(view(vendor_revision=None, vendor_condition=None)).action == d.WAIT
    assert d.decide_launch(view(vendor_condition="pending")).action == d.WAIT


def test_a_new_delivery_launches_once_whoever_asks():
    first = d.decide_launch(view(incident_id="INC-1"))
    assert first.launch and first.incident_id == "INC-1"
    assert first.attempt_key == "XNYS:2026-03-10:r1:aaaaaaaaaaaa"
    # The publication sensor and the lag sensor see the same facts: the second sees the attempt already made.
    again = d.decide_launch(view(attempted=frozenset({first.attempt_key})))
    assert again.action == d.SKIP and "already launched" in again.reason


def test_a_run_in_flight_means_wait():
    assert d.decide_launch(view(in_flight=True)).action == d.WAIT


def test_quarantined_delivery_is_retried_only_when_the_vendor_changed_it():
    corrupt = "c" * 64
    same = d.decide_launch(view(vendor_digest=corrupt, quarantined_digests=frozenset({corrupt})))
    assert same.action == d.SKIP and "quarantined" in same.reason
    fixed = d.decide_launch(view(vendor_digest="f" * 64, quarantined_digests=frozenset({corrupt})))
    assert fixed.launch
    restated = d.decide_launch(view(vendor_revision=2, vendor_digest=corrupt, quarantined_digests=frozenset()))
    assert restated.launch


def test_production_at_the_vendor_revision_needs_nothing():
    assert d.decide_launch(view(held_revision=1, held_digest="a" * 64)).action == d.SKIP


@pytest.mark.parametrize(
    ("incoming", "digest", "held", "held_digest", "allowed"),
    [
        (2, "b", 1, "a", True),  # restatement: strictly higher
        (1, "a", 2, "b", False),  # rollback
        (2, "b", 2, "a", True),  # same revision, other bytes: an explicit re-run may land it
        (2, "a", 2, "a", True),  # idempotent re-run
        (1, "a", None, None, True),
    ],
)
def test_revisions_only_move_forward(incoming, digest, held, held_digest, allowed):
    assert d.revision_verdict(incoming, digest, held, held_digest)[0] is allowed


def test_rollback_is_refused_not_launched():
    decision = d.decide_launch(view(vendor_revision=1, held_revision=2, held_digest="b" * 64))
    assert decision.action == d.REFUSE and "rollback" in decision.reason


def test_one_quarantine_per_distinct_delivery():
    assert d.should_quarantine("c" * 64, [])
    assert not d.should_quarantine("c" * 64, ["c" * 64])
    assert d.should_quarantine("f" * 64, ["c" * 64])


def test_checksum_mismatch_beats_lag():
    assert d.strongest_cause(["lag_breach", "checksum_mismatch"]) == "checksum_mismatch"
    assert d.reclassify("lag_breach", "checksum_mismatch") == "checksum_mismatch"
    assert d.reclassify("checksum_mismatch", "lag_breach") is None
    assert d.reclassify("checksum_mismatch", "checksum_mismatch") is None


def test_a_vendor_declared_degraded_day_explains_the_gates_it_fails_and_its_lateness():
    assert d.strongest_cause(["quality_gate", "vendor_degraded", "lag_breach"]) == "vendor_degraded"
    assert d.reclassify("lag_breach", "vendor_degraded") == "vendor_degraded"
    assert d.reclassify("vendor_degraded", "checksum_mismatch") == "checksum_mismatch"


def test_any_recovery_reports_into_the_covering_incident():
    assert d.attach_incident(None, "INC-1") == "INC-1"
    assert d.attach_incident("INC-2", "INC-1") == "INC-2"
    assert d.attach_incident(None, None) is None


def test_backfill_initiated_only_when_a_run_starts_and_once():
    assert not d.backfill_started_stage(False, "contained")
    assert d.backfill_started_stage(True, "contained")
    assert not d.backfill_started_stage(True, "recovering")


def test_catch_up_requests_exactly_the_skipped_partitions_of_released_consumers():
    skips = [d.ConsumerSkip("XNYS", "feature_store_writer", "2026-03-10"),
             d.ConsumerSkip("XNYS", "backtest_exporter", "2026-03-10"),
             d.ConsumerSkip("XLON", "backtest_exporter", "2026-03-10")]
    out = d.catch_up_requests(skips, paused=[("XLON", "backtest_exporter")])
    assert [(s.market, s.consumer) for s in out] == [
        ("XNYS", "backtest_exporter"), ("XNYS", "feature_store_writer")]


def test_backfill_exit_code_is_the_worst_outcome():
    assert d.worst_outcome(["reconciled", "reconciled"]) == 0
    assert d.worst_outcome(["reconciled", "not_published"]) == 1
    assert d.worst_outcome(["reconciled", "failed", "not_published"]) == 2
    assert d.worst_outcome([]) == 0


def test_an_unreadable_manifest_is_landed_once_to_be_quarantined_never_taken_for_lag():
    broken = view(vendor_revision=0, vendor_unreadable=True, vendor_digest="b" * 64, held_revision=3)
    first = d.decide_launch(broken)
    assert first.launch and first.attempt_key == "XNYS:2026-03-10:r0:bbbbbbbbbbbb"  # not a rollback of r3
    assert d.decide_launch(replace(broken, attempted=frozenset({first.attempt_key}))).action == d.SKIP
    assert d.decide_launch(replace(broken, in_flight=True)).action == d.WAIT
    held = d.decide_launch(replace(broken, quarantined_digests=frozenset({"b" * 64})))
    assert held.action == d.SKIP and "quarantined" in held.reason
    changed = replace(broken, vendor_digest="e" * 64, quarantined_digests=frozenset({"b" * 64}))
    assert d.decide_launch(changed).launch
