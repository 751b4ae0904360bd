"""Every fault of the vendor catalogue is caught by the gate its ground truth names; clean data never is.

Each fault kind is published by the simulator exactly as a vendor would deliver it and run through the
pre-flight (the landing verification and every gate, the same code the Dagster assets run). The clean
months cover both 2026 DST changes on each side of the Atlantic, the XNYS/XLON early closes and XHKG half
days, for every default market: no gate may fail (zero false positives).
"""

import datetime as dt

import pytest

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import KINDS, fault_from_dict, scenario_from_dict

REGISTRY = load_registry()
GATE_KINDS = sorted(k for k, v in KINDS.items() if v["stage"] in ("bytes", "frame") and k != "restatement")
# A x100 price is a spike (warning) and, blocking, a scale error: the blocking gate is the one that matters.
BLOCKING_GATE = {"price_scale": "price_scale"}


def preflight(tmp_path, market_id: str, session: dt.date, faults=()):
    scenario = scenario_from_dict({"name": "t", "description": "", "faults": list(faults)}, "test")
    # One file per session (the batch layout, for every market): the minute layout is the streaming tests' job.
    Publisher(drop_store(str(tmp_path)), seed=13, scenarios=(scenario,)).publish_session(market_id, session)
    return ingest.preflight(DirectoryConnector(tmp_path), REGISTRY.get(market_id), session)


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_market_calendar_fault_kind_is_caught_by_its_gate(tmp_path, kind):
    example = dict(KINDS[kind]["example"])
    spec = fault_from_dict(example, "catalogue")
    results = {r.gate: r for r in preflight(tmp_path, spec.market, spec.start, [example])}
    expected = BLOCKING_GATE.get(kind, KINDS[kind]["gate"])
    assert expected in results, f"{kind}: gate {expected} did not run ({sorted(results)})"
    assert not results[expected].passed, f"{kind} not caught by {expected}: {results[expected].summary}"
    assert results[expected].blocking, f"{kind}: {expected} must block promotion"
    assert results[expected].evidence or results[expected].gap_windows or expected == "landing_verification"


def clean_sessions(market_id: str) -> list[dt.date]:
    market = REGISTRY.get(market_id)
    calendar = calendar_for(market.market_id, market.calendar)
    spans = [
        (dt.date(2026, 3, 2), dt.date(2026, 4, 2)),  # US DST 03-08, UK 03-29, the mismatch weeks between
        (dt.date(2026, 10, 22), dt.date(2026, 11, 4)),  # UK 10-25, US 11-01
        (dt.date(2026, 11, 27), dt.date(2026, 11, 27)),  # XNYS early close
        (dt.date(2026, 12, 24), dt.date(2026, 12, 24)),  # early closes, XHKG half day
        (dt.date(2026, 12, 31), dt.date(2026, 12, 31)),  # XLON/XHKG half days
    ]
    return [s for start, end in spans for s in calendar.sessions(start, end)]


@pytest.mark.parametrize("market_id", ["XNYS", "XLON", "XHKG", "CRYPTO"])
def test_market_calendar_clean_months_raise_no_failure(tmp_path, market_id):
    failures = []
    for session in clean_sessions(market_id):
        for result in preflight(tmp_path, market_id, session):
            if not result.passed:
                failures.append(f"{session} {result.gate}: {result.summary}")
    assert failures == []
