"""Clock specs shared by every process of the platform."""

import datetime as dt

import pytest

from tradepulse_assets.core.clock import AnchoredClock, ClockError, FileClock, ManualClock, parse_clock

START = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.timezone.utc)


def test_fixed_clock_stands_still():
    clock = parse_clock("fixed:2026-03-10T10:00:00Z")
    assert isinstance(clock, ManualClock) and clock.now() == START == clock.now()


def test_anchored_clocks_in_two_processes_agree():
    wall = [1_000.0]
    a = AnchoredClock(START, 60, anchor=990.0, wall=lambda: wall[0])
    b = parse_clock("simulated:2026-03-10T10:00:00+00:00:60@990")
    b._wall = lambda: wall[0]
    assert a.now() == b.now() == START + dt.timedelta(minutes=10)  # 10 real seconds at 60x
    wall[0] += 1
    assert a.now() == b.now() == START + dt.timedelta(minutes=11)


def test_a_file_clock_is_one_instant_for_every_reader_and_moves_only_forward(tmp_path):
    writer = FileClock(tmp_path / "clock")
    writer.set(START)
    readers = [parse_clock(f"file:{tmp_path / 'clock'}") for _ in range(2)]  # e.g. the daemon and a run
    assert [r.now() for r in readers] == [START, START]
    writer.advance(dt.timedelta(minutes=5))
    assert {r.now() for r in readers} == {START + dt.timedelta(minutes=5)}
    with pytest.raises(ClockError, match="backwards"):
        writer.set(START)
    with pytest.raises(ClockError, match="cannot read the time"):
        parse_clock(f"file:{tmp_path / 'missing'}").now()


@pytest.mark.parametrize("spec", ["fixed:yesterday", "simulated:2026-03-10T10:00:00:fast", "simulated:x@1", "lunar"])
def test_bad_clock_specs_are_named(spec):
    with pytest.raises(ClockError, match="TRADEPULSE_CLOCK"):
        parse_clock(spec)
