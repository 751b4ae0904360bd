"""Progress of a chaos replay: each runbook stage is reported once, in order, as the replay reaches it.

The replay itself is exercised end to end in test_chaos.py; here a stand-in replay reaches the stages at
chosen steps, so the CLI's progress lines (stderr, one per stage, with an ETA) are checked in milliseconds.
"""

import dataclasses
import datetime as dt

from tradepulse_assets.cli.main import main as cli
from tradepulse_assets.drills import chaos
from tradepulse_assets.drills.chaos import STAGES, StageTimes, announce_stages

FAULT_AT = dt.datetime(2026, 3, 10, 20, 2, tzinfo=dt.UTC)


def _times() -> StageTimes:
    return StageTimes("checksum_corruption", "XNYS", dt.date(2026, 3, 10), FAULT_AT)


def test_stages_are_announced_once_each_in_runbook_order_even_when_reached_together():
    times, announced, heard = _times(), set(), []
    listen = lambda t, stage: heard.append(stage)  # noqa: E731
    announce_stages(times, announced, listen)
    assert heard == []
    # detection and containment happen in the same sensor step
    times.detected = times.contained = FAULT_AT + dt.timedelta(seconds=30)
    announce_stages(times, announced, listen)
    announce_stages(times, announced, listen)  # nothing new: nothing heard
    times.backfill_started = FAULT_AT + dt.timedelta(minutes=11)
    announce_stages(times, announced, listen)
    assert heard == ["detected", "contained", "backfill_started"]


def test_chaos_replay_prints_one_progress_line_per_stage_reached(tmp_path, monkeypatch, capsys):
    def replay_scenario(scenario, sandbox_root, *, on_stage, **kwargs):
        times, announced = _times(), set()
        for minutes, stage in enumerate(STAGES, start=1):
            setattr(times, stage, FAULT_AT + dt.timedelta(minutes=minutes))
            announce_stages(times, announced, on_stage)
        resolved = dataclasses.replace(times, outcome="resolved", incident_id="DRILL-1", cause="checksum")
        return [resolved]

    monkeypatch.setattr(chaos, "replay_scenario", replay_scenario)
    scenario = tmp_path / "one.yaml"
    scenario.write_text(
        "name: one\ndescription: flipped bytes\nfaults:\n"
        "  - {kind: checksum_corruption, market: XNYS, session: 2026-03-10, bytes: 8}\n"
    )
    assert cli(["chaos", "replay", "--scenario", str(scenario)]) == 0
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if line.startswith("[")]
    assert len(lines) == len(STAGES)
    first = f"[1/{len(STAGES)}] chaos one checksum_corruption XNYS 2026-03-10: detected +1m00s"
    assert lines[0].startswith(first)
    assert "ETA" in lines[0] and lines[-1].endswith("resolved +6m00s")
