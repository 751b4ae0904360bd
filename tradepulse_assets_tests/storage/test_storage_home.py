"""``$TRADEPULSE_HOME`` and the runbook's paths under it."""

from datetime import date

import pytest

from tradepulse_assets.storage.home import (
    AUDIT_LOG,
    HEALTH_CATALOG,
    InvalidIdentifier,
    backfill_report_dir,
    home_path,
    incident_report_dir,
    tradepulse_home,
)


def test_home_comes_from_the_environment_and_is_created(monkeypatch, tmp_path):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "a" / "home"))
    home = tradepulse_home()
    assert home == tmp_path / "a" / "home" and home.is_dir()


def test_home_defaults_to_var_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("TRADEPULSE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tradepulse_home(create=False) == tmp_path / "var"
    assert not (tmp_path / "var").exists()
    assert tradepulse_home() == tmp_path / "var" and (tmp_path / "var").is_dir()


def test_runbook_paths(tmp_path):
    assert incident_report_dir(date(2026, 3, 9), "INC-0042") == "reports/incidents/data/2026-03-09-INC-0042"
    assert backfill_report_dir("INC-0042") == "reports/backfill/INC-0042"
    assert home_path(AUDIT_LOG, tmp_path) == tmp_path / "observability" / "audit" / "ingestion_events.jsonl"
    assert home_path(HEALTH_CATALOG, tmp_path) == tmp_path / "observability" / "catalog" / "data_health"
    assert home_path(incident_report_dir(date(2026, 3, 9), "INC-1"), tmp_path).parent == (
        tmp_path / "reports" / "incidents" / "data"
    )


@pytest.mark.parametrize("incident_id", ["../etc", "a/b", "a|b", "", ".."])
def test_unsafe_incident_ids_are_refused(incident_id):
    with pytest.raises(InvalidIdentifier, match="incident id"):
        backfill_report_dir(incident_id)
    with pytest.raises(InvalidIdentifier):
        incident_report_dir(date(2026, 3, 9), incident_id)


def test_home_path_refuses_escapes(tmp_path):
    for bad in ("/etc/passwd", "reports/../../x"):
        with pytest.raises(ValueError):
            home_path(bad, tmp_path)
