"""A gate a market's universe policy makes advisory does not hold an incident open (issue #11).

CRYPTO promotes unknown symbols with a warning: its ``universe`` check fails as WARN while the session is
promoted, so the exit criteria must count it as passing there, and as failing on a market that blocks.
"""

from tradepulse_assets.defs.sensors.check_results import CheckResult
from tradepulse_assets.defs.sensors.exit_criteria import _check_keys, advisory_gates, latest_outcomes
from tradepulse_assets.markets import load_registry

SESSION = "2026-03-10"


def outcomes_with_universe_failed(market_id: str) -> dict[str, bool | None]:
    registry = load_registry()
    keys = _check_keys(registry, market_id)
    results = {(key, SESSION): CheckResult(passed=name != "universe", run_id="run-1")
               for name, key in keys.items()}
    quality, _ = latest_outcomes(None, registry, [(market_id, SESSION)], results)
    return {o.check: o.passed for o in quality}


def test_an_advisory_universe_failure_does_not_hold_a_crypto_incident_open():
    registry = load_registry()
    assert advisory_gates(registry.get("CRYPTO")) == {"universe"}
    assert advisory_gates(registry.get("XNYS")) == frozenset()
    crypto = outcomes_with_universe_failed("CRYPTO")
    assert crypto["universe"] is True and all(crypto.values())
    xnys = outcomes_with_universe_failed("XNYS")
    assert xnys["universe"] is False  # blocking there: the failure holds the incident open
