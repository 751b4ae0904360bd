"""The market registry and the foundation CLI commands, as a user calls them."""

import datetime as dt
import json

import pytest

from tradepulse_assets.cli.main import main
from tradepulse_assets.markets import IngestionMode, load_registry
from tradepulse_assets.markets.registry import RegistryError, parse_registry


def test_default_registry_has_the_four_markets_and_both_modes():
    registry = load_registry()
    assert set(registry.ids) >= {"XNYS", "XLON", "XHKG", "CRYPTO"}
    modes = {m.ingestion_mode for m in registry}
    assert modes == {IngestionMode.STREAMING, IngestionMode.BATCH}
    for m in registry:
        assert m.lag_sla_seconds == (60 if m.is_streaming else 300)  # runbook 3.1
        assert len(m.symbols) == m.universe_size and len(set(m.symbols)) == m.universe_size


def test_registry_file_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "markets.toml"
    path.write_text(
        '[markets.XTKS]\ncalendar = "XTKS"\ningestion_mode = "batch"\nlag_sla_seconds = 300\n'
        'universe_size = 3\nsymbol_prefix = "TK"\n'
    )
    monkeypatch.setenv("TRADEPULSE_MARKETS_FILE", str(path))
    registry = load_registry()
    assert registry.ids == ("XTKS",)
    assert registry.get("XTKS").symbols == ("TK000", "TK001", "TK002")


@pytest.mark.parametrize(
    "text,message",
    [
        ("[markets.X1]\ncalendar='XNYS'\n", "lacks ingestion_mode"),
        (
            "[markets.X1]\ncalendar='XNYS'\ningestion_mode='pull'\nlag_sla_seconds=1\nuniverse_size=1\nsymbol_prefix='A'",
            "is not streaming or batch",
        ),
        ("[markets]\n", "no \\[markets"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_registry_errors_name_the_file_and_field(text, message):
    with pytest.raises(RegistryError, match=message) as info:
        parse_registry(text, "custom.toml")
    assert "custom.toml" in str(info.value)


def test_cli_markets_json_shows_todays_hours(capsys):
    assert main(["markets", "--date", "2026-03-09", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {r["market"]: r for r in payload["markets"]}
    assert rows["XNYS"]["open_utc"] == "13:30"  # first day of US summer time
    assert rows["XHKG"]["break_utc"] == "04:00-05:00"
    assert rows["CRYPTO"]["minutes"] == 1440


def test_cli_markets_shows_closed_market_on_holiday(capsys):
    assert main(["markets", "--date", "2026-12-25"]) == 0
    out = capsys.readouterr().out
    assert "XNYS" in out and "closed" in out


def test_cli_calendar_sessions(capsys):
    assert main(["calendar", "sessions", "--market", "XNYS", "--start", "2026-11-25", "--end", "2026-11-30", "--json"]) == 0
    sessions = json.loads(capsys.readouterr().out)["sessions"]
    assert [s["session"] for s in sessions] == ["2026-11-25", "2026-11-27", "2026-11-30"]
    assert sessions[1]["minutes"] == 210


def test_cli_errors_are_one_line_with_a_hint(capsys):
    assert main(["calendar", "sessions", "--market", "NOPE", "--start", "2026-11-25", "--end", "2026-11-30"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown market 'NOPE'") and "(fix: " in err and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("group", ["vendor", "ingest", "quality", "incident", "control", "chaos"])
def test_cli_every_group_has_help(group, capsys):
    with pytest.raises(SystemExit) as info:
        main([group, "--help"])
    assert info.value.code == 0
    assert group in capsys.readouterr().out


def test_session_partitions_skip_weekends_and_holidays():
    from tradepulse_assets.defs.partitions import session_partitions

    registry = load_registry()
    xnys = session_partitions(registry.get("XNYS")).get_partition_keys(
        current_time=dt.datetime(2026, 12, 31, tzinfo=dt.timezone.utc)
    )
    assert "2026-11-27" in xnys and "2026-11-26" not in xnys  # Thanksgiving
    assert "2026-11-28" not in xnys and "2026-12-25" not in xnys
    xlon = session_partitions(registry.get("XLON")).get_partition_keys(
        current_time=dt.datetime(2026, 12, 31, tzinfo=dt.timezone.utc)
    )
    assert "2026-11-26" in xlon and "2026-12-28" not in xlon
    crypto = session_partitions(registry.get("CRYPTO")).get_partition_keys(
        current_time=dt.datetime(2026, 12, 31, tzinfo=dt.timezone.utc)
    )
    assert "2026-12-25" in crypto and "2026-11-28" in crypto
