"""``tradepulse-cli chaos replay``: re-create a fault scenario on simulated time and time each runbook stage."""

import sys
from pathlib import Path

from tradepulse_assets.cli.output import CliError, Progress, emit, table
from tradepulse_assets.feeds.scenarios import ScenarioError, load_scenario


def add_commands(sub, common) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a fault scenario in a sandbox and print when each stage happened",
        parents=[common],
    )
    p.add_argument("--scenario", required=True, help="scenario YAML file or packaged name (vendor scenarios)")
    p.add_argument("--sandbox", type=Path, help="keep the sandboxes here (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--notify",
        action="store_true",
        help="send the drill's messages to the configured channels (marked [DRILL]; PagerDuty uses"
        " TRADEPULSE_PAGERDUTY_DRILL_ROUTING_KEY when set). Default: nothing leaves the sandbox",
    )
    p.set_defaults(handler=_replay)


def _fmt(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    minutes, secs = divmod(int(seconds), 60)
    return f"+{minutes}m{secs:02d}s"


def _replay(args) -> int:
    from tradepulse_assets.drills.chaos import STAGES, replay_scenario  # Dagster import only for this command

    try:
        scenario = load_scenario(args.scenario)
    except (ScenarioError, OSError) as exc:
        raise CliError(str(exc), hint="tradepulse-cli vendor scenarios lists the packaged ones") from None
    if not args.json:
        print(f"replaying {scenario.name}: {len(scenario.faults)} fault(s) on simulated time", file=sys.stderr)
    with Progress(args, len(scenario.faults) * len(STAGES), f"chaos {scenario.name}") as progress:

        def on_stage(times, stage: str) -> None:
            fault = f"{times.kind} {times.market} {times.session}"
            progress.step(fault, f"{stage} {_fmt(times.seconds(stage))}")

        results = replay_scenario(
            scenario, args.sandbox, seed=args.seed, notify=args.notify, on_stage=on_stage
        )
    rows = [
        {"kind": r.kind, "market": r.market, "session": r.session, "incident": r.incident_id, "cause": r.cause,
         **{s: _fmt(r.seconds(s)) for s in STAGES}, "outcome": r.outcome}
        for r in results
    ]
    emit(args, {"scenario": scenario.name, "results": [r.to_dict() for r in results]},
         table(rows) + "\ntimes are from the fault (stall minute, or when the session was due from the vendor)")
    return 0 if all(r.outcome == "resolved" for r in results) else 1
