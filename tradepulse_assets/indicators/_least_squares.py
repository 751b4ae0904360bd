"""Least-squares slope used by the Hurst estimators (numba, closed form on centred abscissae).

Both peers fit ``np.polyfit(log s, log F, 1)``; the centred closed form gives the same slope to
rounding and runs inside the parallel kernels without a LAPACK call per window.
"""

from __future__ import annotations

import numpy as np
from ._jit import kernel


@kernel
def ols_slope(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Slope of the least-squares line through the points ``(x[i], y[i])`` where ``mask[i]``; NaN if < 2 points."""
    n = 0
    sx = 0.0
    sy = 0.0
    for i in range(x.size):
        if mask[i]:
            n += 1
            sx += x[i]
            sy += y[i]
    if n < 2:
        return np.nan
    mx = sx / n
    my = sy / n
    sxy = 0.0
    sxx = 0.0
    for i in range(x.size):
        if mask[i]:
            dx = x[i] - mx
            sxy += dx * (y[i] - my)
            sxx += dx * dx
    if sxx == 0.0:
        return np.nan
    return sxy / sxx
