"""Configuration is declared once: every variable the code reads is in core/environment.py's table, the
docs page lists exactly that table, and nothing else reads the environment variable by variable."""

import re
from pathlib import Path

import pytest

from tradepulse_assets.core.environment import (
    PREFIXES,
    VARIABLES,
    UndeclaredVariable,
    is_set,
    read,
    read_prefixed,
)
from tradepulse_assets.pipeline.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tradepulse_assets"
NAME = re.compile(r"[\"'`]((?:TRADEPULSE|AWS|DAGSTER)_[A-Z0-9_]+)")
#: Reading one variable directly: allowed only in the table's module and where a drill saves the
#: environment it replaces (drills/sandbox.py restores it afterwards); numba's own cache variable.
SINGLE_READ = re.compile(r"os\.environ\.get\(|os\.getenv\(")
ALLOWED = {"core/environment.py", "drills/sandbox.py", "indicators/_jit.py"}


def _sources():
    return sorted(SOURCE.rglob("*.py"))


def test_every_variable_the_code_names_is_declared():
    declared = set(VARIABLES)
    named = {m for path in _sources() for m in NAME.findall(path.read_text(encoding="utf-8"))}
    undeclared = sorted(n for n in named if n not in declared and not any(n.startswith(p) for p in PREFIXES))
    assert undeclared == []


def test_only_the_environment_module_reads_single_variables():
    readers = [
        str(path.relative_to(SOURCE))
        for path in _sources()
        if str(path.relative_to(SOURCE)) not in ALLOWED
        and SINGLE_READ.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == [], "read configuration with tradepulse_assets.core.environment.read"


def test_the_configuration_page_lists_exactly_the_declared_table():
    page_text = (REPO / "docs/configuration.md").read_text()
    rows = re.findall(r"^\| `([A-Z0-9_<>]+)` \| (.*?) \| `?(.*?)`? \| (yes)? ?\|$", page_text, re.M)
    page = {name: (meaning, default or None, bool(secret)) for name, meaning, default, secret in rows}
    table = {v.name: (v.meaning, v.default, v.secret) for v in VARIABLES.values()}
    table |= {v.name + "<CHANNEL>": (v.meaning, v.default, v.secret) for v in PREFIXES.values()}
    assert page == table


def test_unset_or_blank_reads_as_the_default_and_a_typo_is_an_error():
    assert read("TRADEPULSE_CLOCK", {}) == "system"
    assert read("TRADEPULSE_CLOCK", {"TRADEPULSE_CLOCK": "  "}) == "system"
    assert read("TRADEPULSE_CLOCK", {"TRADEPULSE_CLOCK": " fixed:2026-03-10T00:00:00+00:00 "}).startswith(
        "fixed:"
    )
    assert read("TRADEPULSE_VENDOR_SOURCE", {}) is None
    assert not is_set("TRADEPULSE_CLOCK", {"TRADEPULSE_CLOCK": ""})
    with pytest.raises(UndeclaredVariable, match="TRADEPULSE_CLOCKK is not declared"):
        read("TRADEPULSE_CLOCKK", {})
    with pytest.raises(UndeclaredVariable):
        read_prefixed("TRADEPULSE_TEAMS_WEBHOOK_", {})
    webhooks = {"TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": "http://x/1", "TRADEPULSE_SLACK_WEBHOOK_OPS": " "}
    assert read_prefixed("TRADEPULSE_SLACK_WEBHOOK_", webhooks) == {"INCIDENTS": "http://x/1"}


def test_settings_take_the_declared_defaults_and_mark_only_what_the_environment_set(monkeypatch, tmp_path):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path))
    for name in ("TRADEPULSE_CLOCK", "TRADEPULSE_EXECUTOR", "TRADEPULSE_LAG_LOOKBACK_SESSIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", "postgresql://u:secret@db/tp")
    settings = load_settings()
    assert (settings.clock, settings.executor, settings.lag_lookback_sessions) == ("system", "in_process", 3)
    assert settings.from_environment == {"state_db_url"}
