"""Clocks: every component that reads the time takes one, so a chaos replay can run on simulated time.

``SystemClock`` is the wall clock; ``SimulatedClock`` starts at a chosen instant and runs ``speed`` times
faster than real time (a day of streaming in minutes); ``ManualClock`` only moves when a test advances it.
``TRADEPULSE_CLOCK`` selects one for the whole platform: ``system`` or ``simulated:<iso start>:<speed>``.
``FileClock`` is a manual clock shared by processes: a drill or a soak steps the time of a whole running stack
(daemon, code server, run workers, CLI) by rewriting one small file, and waits for the stack to react.
"""

import datetime as dt
import os
import threading
import time
from typing import Callable, Protocol, runtime_checkable

from tradepulse_assets.core.environment import read
from tradepulse_assets.core.io import atomic_write

CLOCK_ENV = "TRADEPULSE_CLOCK"


class ClockError(ValueError):
    """A clock specification (``TRADEPULSE_CLOCK``) or a start time that cannot be used."""


#: What most components take: a clock's ``now`` (``clock.now``), so a test passes ``lambda: T0``.
Now = Callable[[], dt.datetime]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant as an aware UTC datetime."""
        ...


def _aware_utc(ts: dt.datetime, what: str) -> dt.datetime:
    if ts.tzinfo is None:
        raise ClockError(f"{what} {ts.isoformat()} has no time zone; clocks work in UTC")
    return ts.astimezone(dt.timezone.utc)


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


class SimulatedClock:
    """Starts at ``start`` and advances ``speed`` simulated seconds per real second.

    ``monotonic`` is injectable so the clock itself can be tested without sleeping.
    """

    def __init__(
        self, start: dt.datetime, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ):
        if speed <= 0:
            raise ClockError(f"simulated clock speed must be positive, got {speed}")
        self.start = _aware_utc(start, "simulated clock start")
        self.speed = float(speed)
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> dt.datetime:
        elapsed = (self._monotonic() - self._origin) * self.speed
        return self.start + dt.timedelta(seconds=elapsed)

    def __repr__(self) -> str:
        return f"SimulatedClock(start={self.start.isoformat()}, speed={self.speed:g})"


class ManualClock:
    """A clock that moves only when told to (tests, deterministic replays)."""

    def __init__(self, start: dt.datetime):
        self._now = _aware_utc(start, "manual clock start")
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        if delta < dt.timedelta(0):
            raise ClockError(f"a clock does not go backwards (advance by {delta})")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: dt.datetime) -> None:
        instant = _aware_utc(instant, "manual clock time")
        with self._lock:
            if instant < self._now:
                raise ClockError(
                    f"a clock does not go backwards ({self._now.isoformat()} -> {instant.isoformat()})"
                )
            self._now = instant

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


class AnchoredClock:
    """Simulated time shared by processes: ``start`` at wall-clock ``anchor`` (epoch seconds), ``speed`` x.

    Unlike :class:`SimulatedClock` (anchored when constructed), every process that parses the same spec
    agrees on "now": the daemon, run workers, the ingestors and the CLI see one simulated time.
    """

    def __init__(self, start: dt.datetime, speed: float, anchor: float, wall: Callable[[], float] = time.time):
        if speed <= 0:
            raise ClockError(f"simulated clock speed must be positive, got {speed}")
        self.start = _aware_utc(start, "simulated clock start")
        self.speed, self.anchor, self._wall = float(speed), float(anchor), wall

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(self._wall() - self.anchor) * self.speed)

    def __repr__(self) -> str:
        return f"AnchoredClock(start={self.start.isoformat()}, speed={self.speed:g}, anchor={self.anchor:.3f})"


class FileClock:
    """Time as written in a file (one ISO instant), re-read on every ``now()``: every process of a stack that
    is given ``file:<path>`` sees the same simulated instant, and time moves only when the file is rewritten
    (``FileClock.set``, an atomic rename). A scripted drill can then say "the session closes now" to a real
    daemon and wait for its sensors, instead of racing a clock that runs on its own.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def now(self) -> dt.datetime:
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError as exc:
            raise ClockError(f"{CLOCK_ENV}=file:{self.path}: cannot read the time ({exc})") from None
        return _parse_start(text, f"file:{self.path}")

    def set(self, instant: dt.datetime) -> None:
        """Move every reader to ``instant`` (never backwards)."""
        instant = _aware_utc(instant, "file clock time")
        if os.path.exists(self.path) and instant < self.now():
            raise ClockError(f"a clock does not go backwards ({self.now().isoformat()} -> {instant.isoformat()})")
        # readers see the old instant or the new one, never half a line
        atomic_write(self.path, (instant.isoformat() + "\n").encode(), fsync=False)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        if delta < dt.timedelta(0):
            raise ClockError(f"a clock does not go backwards (advance by {delta})")
        self.set(self.now() + delta)
        return self.now()

    def __repr__(self) -> str:
        return f"FileClock({self.path!r})"


def _parse_start(text: str, spec: str) -> dt.datetime:
    try:
        start = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ClockError(f"{CLOCK_ENV}={spec!r}: {exc}") from None
    return start if start.tzinfo else start.replace(tzinfo=dt.timezone.utc)


def _parse_speed(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise ClockError(f"{CLOCK_ENV}={spec!r}: {exc}") from None


def parse_clock(spec: str) -> Clock:
    """The clock named by a spec (the ISO start may contain colons):

    - ``system``: the wall clock;
    - ``fixed:<iso>``: time stands still (replays and tests step it by building a new spec);
    - ``simulated:<iso start>:<speed>``: simulated time anchored when this process parses it;
    - ``simulated:<iso start>:<speed>@<epoch seconds>``: anchored in wall time, shared by processes;
    - ``file:<path>``: the instant written in the file, shared by processes, moved by whoever rewrites it.
    """
    spec = spec.strip()
    if spec in ("", "system"):
        return SystemClock()
    if spec.startswith("fixed:"):
        return ManualClock(_parse_start(spec[len("fixed:"):], spec))
    if spec.startswith("file:"):
        return FileClock(spec[len("file:"):])
    if spec.startswith("simulated:"):
        body, at, anchor = spec[len("simulated:"):].partition("@")
        start_text, sep, speed_text = body.rpartition(":")
        if not sep:
            raise ClockError(f"{CLOCK_ENV}={spec!r}: expected simulated:<iso start>:<speed>[@<epoch>]")
        start, speed = _parse_start(start_text, spec), _parse_speed(speed_text, spec)
        if at:
            return AnchoredClock(start, speed, _parse_speed(anchor, spec))
        return SimulatedClock(start, speed)
    raise ClockError(
        f"{CLOCK_ENV}={spec!r}: expected 'system', 'fixed:<iso>', 'file:<path>' or "
        "'simulated:<iso start>:<speed>[@<epoch>]'"
    )


def clock_from_env(environ: dict | None = None) -> Clock:
    """The platform clock selected by ``TRADEPULSE_CLOCK`` (the wall clock when unset)."""
    return parse_clock(read(CLOCK_ENV, environ))
