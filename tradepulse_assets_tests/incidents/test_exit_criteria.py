"""Exit criteria on hand-written evidence: each criterion met, not met and pending."""

import datetime as dt

from tradepulse_assets.incidents import exit_criteria as ec

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
SLA = 300.0  # batch markets; the window is 2 x SLA = 600 s
PART = [("XNYS", "2026-03-09")]


def samples(*pairs):
    """``(seconds before NOW, lag)`` pairs."""
    return tuple(ec.LagSample(NOW - dt.timedelta(seconds=s), lag) for s, lag in pairs)


def stability(*pairs, **kw):
    return ec.market_stability("XNYS", ec.MarketLag(SLA, samples(*pairs), **kw), NOW)


def test_stable_when_below_sla_for_the_whole_double_window():
    r = stability((660, 10), (600, 12), (300, 8), (0, 5))
    assert r["status"] == ec.MET and r["stable_for_seconds"] == 660


def test_pending_while_the_stable_run_is_shorter_than_two_slas():
    r = stability((900, 450), (540, 40), (240, 30), (0, 20))  # breach 900 s ago, good since 540 s
    assert r["status"] == ec.PENDING
    assert r["stable_for_seconds"] == 540
    assert r["met_at_earliest"] == (NOW + dt.timedelta(seconds=60)).isoformat()


def test_not_met_when_the_latest_sample_breaches_or_is_stale_or_missing():
    assert stability((600, 10), (0, 300))["status"] == ec.NOT_MET  # lag == SLA is a breach
    stale = stability((1200, 10), (900, 10), (600, 10), (301, 10))
    assert stale["status"] == ec.NOT_MET and "no lag sample for 301s" in stale["reason"]
    assert stability()["status"] == ec.NOT_MET


def test_a_sampling_hole_restarts_the_stable_run():
    # Every sample is fine but nobody measured between -1000 s and -400 s: a breach may hide there.
    r = stability((1300, 10), (1000, 10), (400, 10), (100, 10), (0, 10))
    assert r["status"] == ec.PENDING and r["stable_for_seconds"] == 400


def test_samples_after_now_are_ignored():
    r = stability((700, 10), (400, 10), (100, 10), (0, 10), (-60, 900))
    assert r["status"] == ec.MET


def evidence(**kw):
    base = dict(
        now=NOW,
        lag={"XNYS": ec.MarketLag(SLA, samples((700, 10), (400, 10), (100, 10), (0, 10)))},
        affected_partitions=PART,
        backfills=[ec.Reconciliation("XNYS", "2026-03-09", "reconciled", 1950, 1950, "run-b1")],
        required_quality_checks=["dst_alignment", "session_boundary"],
        quality=[ec.CheckOutcome("dst_alignment", "XNYS", "2026-03-09", True, "run-q1"),
                 ec.CheckOutcome("session_boundary", "XNYS", "2026-03-09", True, "run-q1")],
        required_tolerance_checks=["hurst_tolerance"],
        tolerance=[ec.CheckOutcome("hurst_tolerance", "XNYS", "2026-03-09", True, "run-t1")],
        root_cause="vendor outage", owners=["ops"], actions=["alert on stale manifests"],
        signoffs=["quant-strategies"],
    )
    base.update(kw)
    return ec.ExitEvidence(**base)


def test_everything_met():
    e = ec.evaluate(evidence())
    assert e.automatic_met and e.all_met
    assert e.get(ec.QUALITY).evidence["run_ids"] == ["run-q1"]
    assert e.get(ec.BACKFILLS).evidence["run_ids"] == ["run-b1"]


def test_backfill_mismatch_is_not_met_and_missing_backfill_is_pending():
    bad = ec.evaluate(evidence(backfills=[ec.Reconciliation("XNYS", "2026-03-09", "row_mismatch", 1900, 1950)]))
    assert bad.get(ec.BACKFILLS).status == ec.NOT_MET and not bad.automatic_met
    assert bad.get(ec.BACKFILLS).evidence["mismatched"][0]["vendor_rows"] == 1950
    missing = ec.evaluate(evidence(backfills=[]))
    assert missing.get(ec.BACKFILLS).status == ec.PENDING
    assert missing.get(ec.BACKFILLS).evidence["missing"] == ["XNYS/2026-03-09"]


def test_a_failed_dst_gate_fails_the_quality_suite_and_a_missing_one_is_pending():
    failed = ec.evaluate(evidence(quality=[
        ec.CheckOutcome("dst_alignment", "XNYS", "2026-03-09", False, "run-q2", "XNYS/bars:dst_alignment"),
        ec.CheckOutcome("session_boundary", "XNYS", "2026-03-09", True, "run-q2")]))
    crit = failed.get(ec.QUALITY)
    assert crit.status == ec.NOT_MET
    assert crit.evidence["failed"] == [{"check": "XNYS/bars:dst_alignment", "partition": "XNYS/2026-03-09",
                                        "run_id": "run-q2"}]
    pending = ec.evaluate(evidence(quality=[ec.CheckOutcome("dst_alignment", "XNYS", "2026-03-09", True)]))
    assert pending.get(ec.QUALITY).status == ec.PENDING
    assert pending.get(ec.QUALITY).evidence["waiting"] == ["XNYS/2026-03-09:session_boundary"]


def test_the_latest_check_result_wins():
    e = ec.evaluate(evidence(tolerance=[ec.CheckOutcome("hurst_tolerance", "XNYS", "2026-03-09", False, "r1"),
                                        ec.CheckOutcome("hurst_tolerance", "XNYS", "2026-03-09", True, "r2")]))
    assert e.get(ec.TOLERANCE).status == ec.MET


def test_tolerance_failure_blocks_automatic_exit():
    e = ec.evaluate(evidence(tolerance=[ec.CheckOutcome("hurst_tolerance", "XNYS", "2026-03-09", False)]))
    assert e.get(ec.TOLERANCE).status == ec.NOT_MET and not e.automatic_met


def test_resolution_is_manual_and_only_blocks_all_met():
    e = ec.evaluate(evidence(root_cause=None, owners=[], actions=[]))
    assert e.automatic_met and not e.all_met
    assert e.unmet() == (ec.RESOLUTION,)
    assert e.get(ec.RESOLUTION).summary == "missing: root cause, owners, actions"
    assert ec.with_resolution(e, "x", ["o"], ["a"]).all_met


def test_strategy_signoff_is_manual_and_required_to_resolve():
    e = ec.evaluate(evidence(signoffs=[]))
    assert e.automatic_met and not e.all_met and e.unmet() == (ec.SIGNOFF,)
    assert e.get(ec.SIGNOFF).summary == "no strategy owner has signed off yet"
    signed = ec.with_signoffs(e, ["quant-strategies"])
    assert signed.all_met and signed.get(ec.SIGNOFF).evidence == {"signed_off_by": ["quant-strategies"]}


def test_evaluation_round_trips_through_json_dict():
    e = ec.evaluate(evidence(backfills=[]))
    again = ec.ExitEvaluation.from_dict(e.to_dict())
    assert again.to_dict() == e.to_dict() and again.unmet() == (ec.BACKFILLS,)
