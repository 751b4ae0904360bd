import datetime as dt

import pytest

from tradepulse_assets.core.clock import (
    ClockError,
    ManualClock,
    SimulatedClock,
    SystemClock,
    clock_from_env,
)

T0 = dt.datetime(2026, 3, 9, 13, 30, tzinfo=dt.timezone.utc)


def test_manual_clock_moves_only_when_advanced_and_never_backwards():
    clock = ManualClock(T0)
    assert clock.now() == T0
    assert clock.advance(dt.timedelta(minutes=5)) == T0 + dt.timedelta(minutes=5)
    with pytest.raises(ClockError):
        clock.advance(dt.timedelta(seconds=-1))
    with pytest.raises(ClockError):
        ManualClock(dt.datetime(2026, 3, 9))  # naive


def test_simulated_clock_runs_speed_times_faster_than_its_time_source():
    ticks = iter([100.0, 100.0, 102.5])
    clock = SimulatedClock(T0, speed=60, monotonic=lambda: next(ticks))
    assert clock.now() == T0
    assert clock.now() == T0 + dt.timedelta(seconds=150)  # 2.5 real seconds x 60


def test_clock_from_env_parses_system_and_simulated_specs():
    assert isinstance(clock_from_env({}), SystemClock)
    clock = clock_from_env({"TRADEPULSE_CLOCK": "simulated:2026-03-09T13:30:00+00:00:120"})
    assert isinstance(clock, SimulatedClock) and clock.speed == 120 and clock.start == T0
    assert clock.now().tzinfo is not None
    with pytest.raises(ClockError, match="TRADEPULSE_CLOCK"):
        clock_from_env({"TRADEPULSE_CLOCK": "lunar"})
