"""Input checks shared by the indicator kernels.

Numba kernels cannot raise helpful errors (and silently return NaN on bad input), so every public
function validates its arrays here first and raises a ``ValueError`` that names the argument and the
fault: NaN/inf, too short, or constant.
"""

from __future__ import annotations

import numpy as np


def as_float_array(x: object, name: str, ndim: tuple[int, ...]) -> np.ndarray:
    """Return ``x`` as a C-contiguous float64 array of one of the allowed dimensions."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim not in ndim:
        allowed = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name}: expected a {allowed} array, got shape {arr.shape}")
    return arr


def require_finite(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` holds NaN or infinity, naming the first offending position."""
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: contains {int(bad.sum())} non-finite value(s) (NaN or inf), first at index {first}"
        )


def require_length(n: int, minimum: int, name: str, what: str = "points") -> None:
    if n < minimum:
        raise ValueError(f"{name}: too short, {n} {what} but at least {minimum} are needed")


def require_not_constant(arr: np.ndarray, name: str, axis: int = -1) -> None:
    """Raise if any series along ``axis`` is constant (zero range): its scaling is undefined."""
    rng = np.ptp(arr, axis=axis)
    flat = np.atleast_1d(rng == 0)
    if flat.any():
        rows = np.flatnonzero(flat)
        where = "" if arr.ndim == 1 else f" (series {rows[:10].tolist()}{'...' if rows.size > 10 else ''})"
        raise ValueError(f"{name}: constant series{where}; the indicator is undefined for a series without variation")


def as_scales(values: object, name: str, minimum: int, maximum: int) -> np.ndarray:
    """Integer scales (segment lengths), strictly increasing, within [minimum, maximum]."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name}: need a 1-D list of at least 2 scales, got {arr.tolist()!r}")
    if not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError(f"{name}: scales must be integers, got {arr.tolist()!r}")
    ints = arr.astype(np.int64)
    if np.any(np.diff(ints) <= 0):
        raise ValueError(f"{name}: scales must be strictly increasing, got {ints.tolist()}")
    if ints[0] < minimum or ints[-1] > maximum:
        raise ValueError(f"{name}: scales must lie in [{minimum}, {maximum}] for this series length, got {ints.tolist()}")
    return ints
