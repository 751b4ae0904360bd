"""``tradepulse-cli incident`` and ``control`` through ``main([...])`` with ``--json``."""

import json

import pytest

from tradepulse_assets.cli.main import main


@pytest.fixture(autouse=True)
def env(target, tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", target.url)
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))


def run(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


OPEN = ("incident", "open", "--market", "XNYS", "--start", "2026-03-09T14:00:00Z", "--end", "2026-03-10T15:00:00Z",
        "--description", "desk sees flat prices", "--now", "2026-03-10T15:10:00Z")


def test_open_list_show_note(capsys, tmp_path):
    code, out, _ = run(capsys, *OPEN)
    assert code == 0 and out["opened"] is True
    incident = out["incident"]
    assert incident["id"] == "INC-20260310-0001" and incident["cause"] == "user_report"
    assert incident["state"] == "contained" and incident["scope"]["sessions"] == ["2026-03-09", "2026-03-10"]
    assert (tmp_path / "home" / out["artefacts"] / "timeline.md").is_file()

    code, again, _ = run(capsys, *OPEN)
    assert again["opened"] is False and again["incident"]["detections"] == 2

    code, out, _ = run(capsys, "incident", "note", "INC-20260310-0001", "--vendor-ref", "VND-9", "--text", "ticket",
                       "--now", "2026-03-10T15:20:00Z")
    assert code == 0 and out["incident"]["vendor_refs"] == ["VND-9"]

    code, out, _ = run(capsys, "incident", "list", "--state", "contained")
    assert [i["id"] for i in out["incidents"]] == ["INC-20260310-0001"]
    code, out, _ = run(capsys, "incident", "list", "--state", "resolved")
    assert out["incidents"] == []

    code, out, _ = run(capsys, "incident", "show", "INC-20260310-0001")
    assert [e["kind"] for e in out["events"]][:2] == ["opened", "control"]
    assert out["events"][-1]["message"] == "vendor ref VND-9 ticket"
    assert {h["toggle"] for h in out["holds"]} == {"feature_store_writer", "backtest_exporter", "strategy_promotions"}
    assert out["exit_criteria"] is None


def test_resolve_refuses_without_criteria_then_force_resolves(capsys):
    run(capsys, *OPEN)
    resolve = ("incident", "resolve", "INC-20260310-0001", "--root-cause", "stale cache", "--owner", "ops",
               "--owner", "quant", "--action", "purge cache", "--now", "2026-03-10T16:00:00Z")
    code, out, err = run(capsys, *resolve)
    assert code == 3 and out["error"]["exit_code"] == 3  # --json: the error as an object on stdout
    assert "cannot be resolved: exit criteria were never evaluated" in err and "--force" in err

    code, out, _ = run(capsys, *resolve, "--force")
    assert code == 0 and out["incident"]["state"] == "resolved"
    assert out["incident"]["owners"] == ["ops", "quant"] and out["postmortem"].endswith("postmortem.md")
    assert out["followups"][0]["due_at"].startswith("2026-04-09")
    code, out, _ = run(capsys, "control", "status", "--market", "XNYS")
    assert not any(t["paused"] for t in out["toggles"])


def test_control_pause_resume_status(capsys):
    code, out, _ = run(capsys, "control", "pause", "--market", "XLON", "--consumer", "backtest_exporter",
                       "--reason", "vendor maintenance", "--now", "2026-03-10T15:00:00Z")
    assert code == 0 and out["toggles"][0]["paused"] is True
    assert out["toggles"][0]["holds"][0]["holder"] == "manual"
    code, out, _ = run(capsys, "control", "status", "--market", "XLON")
    assert {t["toggle"]: t["paused"] for t in out["toggles"]} == {
        "feature_store_writer": False, "backtest_exporter": True, "strategy_promotions": False}
    code, out, _ = run(capsys, "control", "resume", "--market", "XLON", "--all", "--reason", "done")
    assert code == 0 and not any(t["paused"] for t in out["toggles"])


def test_errors_are_one_clear_line(capsys):
    code, _, err = run(capsys, "incident", "show", "INC-20990101-0001")
    assert code == 2 and "no incident 'INC-20990101-0001'" in err
    code, _, err = run(capsys, "control", "pause", "--market", "NOPE", "--all", "--reason", "x")
    assert code == 2 and "unknown market 'NOPE'" in err
    code, _, err = run(capsys, "incident", "open", "--market", "XNYS", "--start", "2026-03-10T10:00Z",
                       "--end", "2026-03-09T10:00Z", "--description", "x")
    assert code == 2 and "is before --start" in err


def test_resolution_leaves_followups_with_owners_a_review_and_a_pagerduty_resolve(capsys, tmp_path):
    run(capsys, *OPEN)
    code, out, _ = run(capsys, "incident", "signoff", "INC-20260310-0001", "--owner", "quant-strategies", "--note",
                       "hurst within tolerance", "--now", "2026-03-10T15:50:00Z")
    assert code == 0 and out["signoff"]["owner"] == "quant-strategies"
    code, out, _ = run(capsys, "incident", "show", "INC-20260310-0001")
    assert out["events"][-1]["message"] == "strategy owner quant-strategies signed off: hurst within tolerance"
    code, _, _ = run(capsys, "incident", "resolve", "INC-20260310-0001", "--root-cause", "stale cache", "--owner",
                     "ops", "--action", "purge cache", "--now", "2026-03-10T16:00:00Z", "--force")
    assert code == 0

    code, out, _ = run(capsys, "incident", "followups", "--now", "2026-03-30T00:00:00Z")
    items = {f["kind"]: f for f in out["followups"]}
    assert set(items) == {"vendor_failover", "synthetic_checks", "runbook_update", "chaos_replay"}
    assert {f["owner"] for f in items.values()} == {"ops"}
    assert items["runbook_update"]["due_at"].startswith("2026-03-17") and items["runbook_update"]["overdue"]
    assert items["chaos_replay"]["due_at"].startswith("2026-04-09") and not items["chaos_replay"]["overdue"]
    assert out["overdue"] == 3

    code, out, _ = run(capsys, "incident", "followup-done", str(items["runbook_update"]["id"]), "--note", "PR 42",
                       "--now", "2026-03-30T00:00:00Z")
    assert code == 0
    code, out, _ = run(capsys, "incident", "followups", "--now", "2026-03-30T00:00:00Z")
    assert out["overdue"] == 2 and "runbook_update" not in {f["kind"] for f in out["followups"]}

    code, out, _ = run(capsys, "incident", "review", "--since", "2026-03-01T00:00:00Z", "--until",
                       "2026-03-31T00:00:00Z", "--write")
    report = (tmp_path / "home" / out["path"]).read_text()
    assert out["path"] == "reports/incidents/reviews/2026-03-31.md" and report == out["report"]
    assert "| INC-20260310-0001 | user_report | XNYS | resolved |" in report
    assert "**OVERDUE**" in report and "6.1 automate vendor failover for XNYS" in report

    # A forced resolution still closes the PagerDuty page: the resolve is in the outbox.
    code, out, _ = run(capsys, "notify", "list", "--incident", "INC-20260310-0001")
    actions = [(m["channel"], m["event_action"]) for m in out["messages"] if m["channel"] == "pagerduty"]
    assert actions == [("pagerduty", "trigger"), ("pagerduty", "resolve")]
    assert {m["status"] for m in out["messages"]} == {"recorded"}  # no channel configured: the outbox file
