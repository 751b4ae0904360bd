"""Hostile deliveries of issue #11 through ``tradepulse-cli quality check``: exit code, the one line naming the
fault, the blocking gate, and production (holding the clean revision 1) unchanged."""

import json

import pytest

from tradepulse_assets.cli.main import main
from tradepulse_assets_tests.adversarial.cases import CASES, MARKET, SESSION

BLOCKED = 1
#: Not yet a failed delivery on this path: an unreadable manifest (or a session folder refused whole) still
#: ends as a one-line CLI error instead of a quarantined delivery.
PENDING = {"malformed_manifest", "symlinked_session"}


def _check(hostile, *extra: str) -> int:
    return main(["quality", "check", "--source", str(hostile.vendor), "--market", MARKET,
                 "--session", SESSION.isoformat(), *extra])


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in PENDING], ids=lambda c: c.name)
def test_quality_check_blocks_the_delivery(case, hostile, capsys):
    case.mutate(hostile.folder)
    code = _check(hostile)
    out, err = capsys.readouterr()
    assert code == BLOCKED, err
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"{MARKET} {SESSION}: BLOCKED by ") and case.gate in last.split("BLOCKED by ")[1]
    assert "Traceback" not in out + err
    assert _check(hostile, "--json") == BLOCKED
    results = {r["gate"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    verdict = results[case.gate]
    assert verdict["passed"] is False and verdict["blocking"] is True
    assert case.fragment in verdict["summary"] and "\n" not in verdict["summary"]
    hostile.assert_production_unchanged()


@pytest.mark.parametrize("case", [c for c in CASES if c.name in PENDING], ids=lambda c: c.name)
def test_unreadable_manifest_is_one_clear_line(case, hostile, capsys):
    case.mutate(hostile.folder)
    code = _check(hostile)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) <= 2  # error + hint
    hostile.assert_production_unchanged()
