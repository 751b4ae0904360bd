"""Fast start: the code location loads without the heavy libraries only some runs need.

Wall-clock is measured by the benchmarks, never here: these tests pin the *causes* of a slow start (which
modules an import pulls in, whether the calendars are rebuilt) so a regression names its culprit.
"""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradepulse_assets.markets import load_registry
from tradepulse_assets.markets.calendars import CALENDAR_END, calendar_for, session_grid

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "pandera", "exchange_calendars", "dagster_aws", "dagster_pandera", "numba", "scipy")


def _modules_after_import(module: str, home: Path) -> set[str]:
    probe = f"import sys, {module}; print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    env = {**os.environ, "TRADEPULSE_HOME": str(home), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_code_location_loads_without_heavy_libraries_once_the_calendar_cache_is_warm(tmp_path):
    first = _modules_after_import("tradepulse_assets.location", tmp_path)
    assert "exchange_calendars" in first  # a cold home builds the calendars once...
    assert list((tmp_path / "cache" / "calendars").glob("sessions-*.json"))
    assert _modules_after_import("tradepulse_assets.location", tmp_path) == set()  # ...a warm one never does


@pytest.mark.parametrize("market", [m.market_id for m in load_registry()])
def test_cached_session_grid_equals_the_calendar(tmp_path, market):
    m = load_registry().get(market)
    cold = session_grid(m.market_id, m.calendar, m.first_session, CALENDAR_END, tmp_path)
    warm = session_grid(m.market_id, m.calendar, m.first_session, CALENDAR_END, tmp_path)
    calendar = calendar_for(m.market_id, m.calendar)
    assert warm == cold
    assert list(warm.closed_days) == calendar.closed_days(m.first_session, CALENDAR_END)
    assert warm.weekdays_only == calendar.trades_weekdays_only
    assert (warm.timezone_name, warm.regular_close_local) == (calendar.timezone_name, calendar.regular_close_local)
    sessions = set(calendar.sessions(m.first_session, CALENDAR_END))
    assert not sessions & set(warm.closed_days)


def test_a_corrupt_or_foreign_cache_file_is_ignored(tmp_path):
    m = load_registry().get("XNYS")
    good = session_grid(m.market_id, m.calendar, m.first_session, CALENDAR_END, tmp_path)
    (cache_file,) = tmp_path.glob("sessions-XNYS-*.json")
    cache_file.write_text("{not json")
    assert session_grid(m.market_id, m.calendar, m.first_session, CALENDAR_END, tmp_path) == good
    # a different window is a different key: the cached answer for the long window is not reused
    start, end = m.first_session, m.first_session + dt.timedelta(days=40)
    short = session_grid(m.market_id, m.calendar, start, end, tmp_path)
    assert short.closed_days == tuple(d for d in good.closed_days if start <= d <= end)
    assert json.loads(cache_file.read_text())["closed_days"]  # rewritten whole, atomically


def test_dagster_column_schema_matches_the_pandera_model():
    from tradepulse_assets.defs.assets.bars import bar_column_schema
    from tradepulse_assets.markets.bars import BarSchema

    model = BarSchema.to_schema().columns
    shown = {c.name: (c.type, c.constraints.nullable) for c in bar_column_schema().columns}
    assert shown == {name: (str(col.dtype), col.nullable) for name, col in model.items()}
