"""The work every gate shares, done once per partition: codes, minute indexes and a dense session grid.

Why a dense grid: a session has a known, bounded set of expected bar minutes (390 for XNYS, 1,440 for a
24/7 day) and a known symbol universe, so every (symbol, minute) pair has a fixed cell. Scattering the bars
into that grid (one ``bincount``/assignment, O(rows)) answers duplicates, completeness, gap windows, returns
and frozen runs without ever sorting the frame. Only the delivery-order check needs a stable sort by symbol
code, and it skips it when the file is already grouped by symbol.

Why chunks: the frame is read a slice of rows at a time as NumPy views of polars' memory, and the passes over
the grid work a slice of symbols at a time, so temporaries are small, stay in cache and reuse the same pages.
Whole-grid temporaries cost more in fresh pages and memory bandwidth than in arithmetic (measured in
benchmarks/README.md, gates section).
"""

import datetime as dt
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS
from tradepulse_assets.markets.calendars import MarketCalendar, SessionHours

MINUTE_US = 60_000_000
UTC = dt.UTC
#: Largest symbols x expected-minutes grid we build (1 byte to 8 bytes a cell): 250 M cells is ~2 GB at most.
MAX_GRID_CELLS = 250_000_000
#: Cells per chunk of the passes over the grid (2 MB of float64: a chunk's temporaries stay in cache).
CHUNK_CELLS = 1 << 18


class GateInputError(ValueError):
    """The gates cannot be run at all (bad session, oversized grid, naive timestamps); the message says which."""


def ts_from_us(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=int(us))


@dataclass(frozen=True)
class SessionSpec:
    """The expected bar minutes of one session (or of a run of sessions, for a backfill range)."""

    market: str
    sessions: tuple[dt.date, ...]
    hours: tuple[SessionHours, ...]
    expected_us: np.ndarray  # int64 epoch microseconds, strictly increasing

    @property
    def label(self) -> str:
        if len(self.sessions) == 1:
            return f"{self.market} {self.sessions[0].isoformat()}"
        return f"{self.market} {self.sessions[0].isoformat()}..{self.sessions[-1].isoformat()}"

    @property
    def n_minutes(self) -> int:
        return int(self.expected_us.size)


def session_spec(calendar: MarketCalendar, session: dt.date | Sequence[dt.date]) -> SessionSpec:
    """Expected minutes of ``session`` (a date, or several dates for a multi-session span) on ``calendar``."""
    if isinstance(session, dt.datetime) or not isinstance(session, (dt.date, Sequence)):
        raise GateInputError(f"market {calendar.market_id}: session must be a date or dates, got {session!r}")
    sessions = (session,) if isinstance(session, dt.date) else tuple(sorted(set(session)))
    if not sessions:
        raise GateInputError(f"market {calendar.market_id}: no session given")
    hours = tuple(calendar.hours(s) for s in sessions)
    minutes = np.concatenate([calendar.minutes(s).astype("datetime64[us]") for s in sessions]).view("int64")
    if minutes.size == 0 or np.any(np.diff(minutes) <= 0):
        raise GateInputError(
            f"market {calendar.market_id}: sessions {sessions} give no increasing minute grid"
        )
    return SessionSpec(calendar.market_id, sessions, hours, minutes)


def runs_of_true(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of True along the last axis of a 2-D mask: (row, first column, last column), row-major."""
    return runs_of_cells(*np.nonzero(mask))


def runs_of_cells(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of adjacent columns among cells given in row-major order: (row, first, last column).

    Work is in the number of cells, not the grid: the masks the gates look at (missing bars, links of frozen
    bars) are sparse."""
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    breaks = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
    starts = np.concatenate(([0], np.flatnonzero(breaks) + 1))
    ends = np.concatenate((starts[1:] - 1, [rows.size - 1]))
    return rows[starts], cols[starts], cols[ends]


class PreparedBars:
    """One partition's bars with the derived arrays the gates share (each computed at most once, on demand).

    ``problems`` maps a required column to why it cannot be used (missing, wrong type, nulls); a gate that
    needs such a column reports "not evaluated" instead of crashing on a frame that failed the schema.
    """

    def __init__(
        self,
        bars: pl.DataFrame | pl.LazyFrame,
        spec: SessionSpec | None = None,
        expected_symbols: Sequence[str] | None = None,
    ):
        self.df = bars.collect() if isinstance(bars, pl.LazyFrame) else bars
        if not isinstance(self.df, pl.DataFrame):
            raise GateInputError(f"bars must be a polars DataFrame or LazyFrame, got {type(bars).__name__}")
        self.spec = spec
        self.expected_symbols = tuple(expected_symbols or ())
        self.n_rows = self.df.height
        self.problems = self._column_problems()

    # --- usability ----------------------------------------------------------------------------
    def _column_problems(self) -> dict[str, str]:
        problems = {}
        schema = self.df.schema
        for name, dtype in {**BAR_COLUMNS, **OPTIONAL_BAR_COLUMNS}.items():
            if name not in schema:
                if name in BAR_COLUMNS:
                    problems[name] = f"column {name} is missing"
            elif schema[name] != dtype:
                problems[name] = f"column {name} has type {schema[name]}, expected {dtype}"
            elif name in BAR_COLUMNS and self.df[name].null_count():
                problems[name] = f"column {name} has {self.df[name].null_count()} nulls"
        return problems

    def unusable(self, columns: Sequence[str]) -> str | None:
        """Why a gate needing ``columns`` cannot run, or None."""
        reasons = [self.problems[c] for c in columns if c in self.problems]
        return "; ".join(reasons) if reasons else None

    def require_spec(self) -> SessionSpec:
        if self.spec is None:
            raise GateInputError("this gate needs the session's calendar: pass calendar and session")
        return self.spec

    # --- per-row arrays -----------------------------------------------------------------------
    def column_rows(self, name: str, rows: slice) -> np.ndarray:
        """``rows`` of a numeric column as a NumPy array: a view of polars' memory unless the slice spans two
        of its chunks (a frame read from Parquet has one per row group; ``to_numpy`` on the whole column would
        copy it, and fresh pages are dear)."""
        return self.df[name].slice(rows.start, rows.stop - rows.start).to_numpy()

    @cached_property
    def symbols(self) -> np.ndarray:
        """Sorted union of delivered and expected symbols; a symbol's code is its position here."""
        present = self.df["symbol"].unique().to_list()
        return np.array(sorted(set(present) | set(self.expected_symbols)), dtype=object)

    @cached_property
    def sym_code(self) -> np.ndarray:
        if self.n_rows == 0:
            return np.zeros(0, dtype=np.uint32)
        codes = self.df["symbol"].cast(pl.Enum(self.symbols.tolist())).to_physical()
        return codes.cast(pl.UInt16 if len(self.symbols) < 65_536 else pl.UInt32).to_numpy()

    @cached_property
    def ts_us(self) -> np.ndarray:
        return self.df["ts"].to_physical().to_numpy()

    @cached_property
    def minute_idx(self) -> np.ndarray:
        """Position of each bar in the expected minutes, -1 when it is not an expected minute."""
        spec = self.require_spec()
        exp = spec.expected_us
        first = int(exp[0])
        span = int((exp[-1] - first) // MINUTE_US) + 1
        lookup = None
        if span != exp.size:  # a break or a closed night inside: minutes since the first open -> positions
            lookup = np.full(span, -1, dtype=np.int64)
            lookup[(exp - first) // MINUTE_US] = np.arange(exp.size)
        out = np.empty(self.n_rows, dtype=np.int32)  # grids are < 2**31 cells (MAX_GRID_CELLS)
        for rows in row_chunks((self.n_rows, 1)):  # small temporaries, reused: fresh pages are dear
            minute, remainder = np.divmod(self.ts_us[rows] - first, MINUTE_US)
            ok = (remainder == 0) & (minute >= 0) & (minute < span)
            if lookup is not None:
                minute = lookup[np.clip(minute, 0, span - 1, out=minute)]
            np.putmask(minute, ~ok, -1)
            out[rows] = minute
        return out

    @cached_property
    def aligned(self) -> np.ndarray:
        return self.minute_idx >= 0

    @cached_property
    def all_aligned(self) -> bool:
        return bool(self.aligned.all())

    @property
    def grid_shape(self) -> tuple[int, int]:
        return len(self.symbols), self.require_spec().n_minutes

    @cached_property
    def cell(self) -> np.ndarray:
        """Grid cell (symbol code x minutes + minute) of each aligned bar; for the others, the slot just past
        the grid (``n_cells``), so scatters and counts take every row without a masked copy."""
        n_sym, n_min = self.grid_shape
        if n_sym * n_min > MAX_GRID_CELLS:
            raise GateInputError(
                f"{self.require_spec().label}: {n_sym} symbols x {n_min} minutes exceeds the gate grid limit "
                f"of {MAX_GRID_CELLS} cells; validate fewer sessions at a time"
            )
        cell = self.sym_code.astype(np.int32)  # in place from here: the arrays are as long as the frame
        cell *= n_min
        cell += self.minute_idx
        if not self.all_aligned:
            np.putmask(cell, ~self.aligned, n_sym * n_min)
        return cell

    @cached_property
    def n_aligned(self) -> int:
        return int(np.count_nonzero(self.aligned))

    @cached_property
    def _counts_with_off_grid(self) -> np.ndarray:
        n_sym, n_min = self.grid_shape
        return np.bincount(self.cell, minlength=n_sym * n_min + 1)

    @property
    def cell_counts(self) -> np.ndarray:
        """Aligned bars per grid cell (flat)."""
        return self._counts_with_off_grid[:-1]

    @cached_property
    def duplicated_aligned_rows(self) -> np.ndarray:
        """Rows (delivery order) of aligned bars whose (symbol, minute) occurs more than once."""
        if self.n_rows == 0 or self.cell_counts.max(initial=0) <= 1:
            return np.zeros(0, dtype=np.int64)
        repeated = np.zeros(self.cell_counts.size + 1, dtype=bool)  # a byte per cell: the gather stays in
        np.greater(self.cell_counts, 1, out=repeated[:-1])  # cache, unlike the counts; off the grid: False
        return np.flatnonzero(repeated[self.cell])

    @cached_property
    def presence(self) -> np.ndarray:
        return (self.cell_counts > 0).reshape(self.grid_shape)

    @cached_property
    def close_grid(self) -> np.ndarray:
        """Close per cell, NaN where no bar; for a repeated cell, the last delivered bar's."""
        n_sym, n_min = self.grid_shape
        grid = np.full(n_sym * n_min + 1, np.nan)  # + the slot of the rows off the grid
        for rows in row_chunks((self.n_rows, 1)):
            grid[self.cell[rows]] = self.column_rows("close", rows)
        last_rows = self.last_of_repeated_cells
        grid[self.cell[last_rows]] = self.df["close"].gather(last_rows).to_numpy()  # deterministic
        return grid[:-1].reshape(n_sym, n_min)

    @cached_property
    def last_of_repeated_cells(self) -> np.ndarray:
        """The last delivered row of each repeated (symbol, minute), in cell order."""
        dup = self.duplicated_aligned_rows
        _, first_in_reversed = np.unique(self.cell[dup][::-1], return_index=True)
        return dup[::-1][first_in_reversed]

    @cached_property
    def frozen_cells(self) -> np.ndarray:
        """Flat grid cells, ascending, whose bar (the last delivered, for a repeated cell) has open = high =
        low = close, a finite price. Frozen bars are few: no grid of them is built."""
        found = [np.zeros(0, dtype=np.int64)]
        for rows in row_chunks((self.n_rows, 1)):
            o, h, lo, c = (self.column_rows(x, rows) for x in ("open", "high", "low", "close"))
            frozen = o == h
            frozen &= h == lo
            frozen &= lo == c
            frozen &= np.isfinite(c)
            found.append(np.flatnonzero(frozen) + rows.start)
        frozen_rows = np.concatenate(found)
        frozen_rows = frozen_rows[self.aligned[frozen_rows]]
        cells = self.cell[frozen_rows]
        repeated = self.cell_counts[cells] > 1
        if repeated.any():  # a repeated cell is frozen when its last delivered bar is
            superseded = ~np.isin(frozen_rows, self.last_of_repeated_cells)
            cells = cells[~(repeated & superseded)]
        return np.unique(cells)

    @cached_property
    def returns(self) -> np.ndarray:
        """Log return of each bar against the previous bar of its symbol with a finite positive close (NaN for
        cells without a bar, for a symbol's first bar, and for a close that is not finite and positive: those
        count as missing here, ohlc_consistency reports them)."""
        close = self.close_grid
        r = np.empty_like(close)
        for rows in row_chunks(close.shape):
            _log_returns(close[rows], out=r[rows])
        return r

    def previous_bar_minute(self, sym: np.ndarray, minute: np.ndarray) -> np.ndarray:
        """For cells that have a return: the minute of the bar it is measured against (evidence only)."""
        close = self.close_grid
        return np.array(
            [np.flatnonzero((close[s, :m] > 0) & (close[s, :m] < np.inf))[-1] for s, m in zip(sym, minute)],
            dtype=np.int64,
        )


def row_chunks(shape: tuple[int, int]) -> Iterator[slice]:
    """Slices of grid rows (symbols) of about ``CHUNK_CELLS`` cells: the passes over the grid work a chunk
    at a time, so their temporaries stay in the CPU cache instead of streaming the whole grid through memory
    once per step (on a busy machine, memory bandwidth is what the gates wait for)."""
    n_rows, n_cols = shape
    step = max(1, CHUNK_CELLS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _log_returns(close: np.ndarray, out: np.ndarray) -> None:
    """``out`` = log returns along each row of ``close``, against the last earlier finite positive close.

    Most cells follow a bar, so the return is the difference with the cell before; only the first bar after a
    run of missing cells (few: one per gap) looks further back, to the bar before the run."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(close)
    logc[~np.isfinite(logc)] = np.nan
    out[:, 0] = np.nan
    np.subtract(logc[:, 1:], logc[:, :-1], out=out[:, 1:])
    row, first, last = runs_of_true(np.isnan(logc))
    resumed = (first > 0) & (last < logc.shape[1] - 1)  # a bar before the run and one after it
    row, before, after = row[resumed], first[resumed] - 1, last[resumed] + 1
    out[row, after] = logc[row, after] - logc[row, before]


def nan_median_rows(values: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN (what ``np.nanmedian(values, axis=1)`` returns, bit for bit); NaN for a row
    without values.

    Rows with the same number of values share one in-place partition at the upper middle position (NaN
    sorts last), instead of a copy and a partition per row (a session's symbols mostly have the same count);
    for an even count the lower middle is the largest value left of it (partitioning at both positions at
    once is several times slower in NumPy).
    """
    counts = values.shape[1] - np.count_nonzero(np.isnan(values), axis=1)
    medians = np.full(values.shape[0], np.nan)
    for count in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == count)
        high = count // 2
        group = values[rows]  # a copy, partitioned in place
        group.partition(high, axis=1)
        upper = group[:, high]
        lower = group[:, :high].max(axis=1) if count % 2 == 0 else upper
        medians[rows] = (lower + upper) / 2
    return medians


def nan_mean_rows(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)
