"""Kuramoto: phase extraction vs SciPy, synchrony bounds, and the causal-window property."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from tradepulse_assets.indicators import analytic_signal, kuramoto_order, order_parameter, phases, window_starts


def _prices(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(rng.standard_normal((n, m)) * 1e-3, axis=0))


@pytest.mark.parametrize("length", [63, 64, 127, 390])
def test_phases_match_scipy_hilbert_of_detrended_series(length):
    rng = np.random.default_rng(length)
    x = rng.standard_normal((7, length)) + np.linspace(0, 3, length)  # a trend the detrend must remove
    ref = np.angle(scipy.signal.hilbert(scipy.signal.detrend(x, axis=-1), axis=-1))
    diff = np.angle(np.exp(1j * (phases(x) - ref)))  # compare on the circle
    assert np.max(np.abs(diff)) < 1e-12
    np.testing.assert_allclose(analytic_signal(x), scipy.signal.hilbert(x), rtol=0, atol=1e-12)


def test_window_phases_match_scipy_per_window():
    rng = np.random.default_rng(3)
    close = _prices(rng, 300, 5)
    res = kuramoto_order(close, window=64, step=32)
    lr = np.diff(np.log(close), axis=0)
    for start, r in zip(res.start, res.r):
        th = np.angle(scipy.signal.hilbert(scipy.signal.detrend(lr[start:start + 63], axis=0), axis=0))
        assert r == pytest.approx(np.mean(np.abs(np.exp(1j * th).mean(axis=1))), abs=1e-12)


def test_identical_symbols_are_fully_synchronised():
    rng = np.random.default_rng(4)
    one = _prices(rng, 256, 1)
    res = kuramoto_order(np.repeat(one, 6, axis=1) * np.arange(1, 7), window=64, step=64)  # scale-free: same returns
    np.testing.assert_allclose(res.r, 1.0, atol=1e-12)
    assert order_parameter(np.full((4, 3), 0.7), axis=1) == pytest.approx(np.ones(4), abs=1e-15)


def test_independent_symbols_are_weakly_synchronised():
    res = kuramoto_order(_prices(np.random.default_rng(5), 640, 200))
    assert np.all(res.r < 0.2)  # ~ sqrt(pi / (4 m)) for m independent phases


def test_revising_one_bar_changes_only_the_windows_that_contain_it():
    rng = np.random.default_rng(6)
    close = _prices(rng, 390, 12)
    for window, step in ((64, 64), (64, 16)):
        before = kuramoto_order(close, window, step)
        for bar in (0, 63, 64, 200, 389):
            revised = close.copy()
            revised[bar, 4] *= 1.001
            after = kuramoto_order(revised, window, step)
            contains = (before.start <= bar) & (bar <= before.end)
            np.testing.assert_array_equal(after.r[~contains], before.r[~contains])  # bit for bit
            assert np.all(after.r[contains] != before.r[contains])


def test_window_grid_is_anchored_at_the_first_bar():
    np.testing.assert_array_equal(window_starts(390, 64, 64), [0, 64, 128, 192, 256, 320])
    np.testing.assert_array_equal(window_starts(63, 64, 64), [])
    # appending bars never moves earlier windows
    assert set(window_starts(300, 64, 32)) <= set(window_starts(390, 64, 32))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c.__setitem__((5, 1), np.nan), "non-finite"),
        (lambda c: c.__setitem__((5, 1), -1.0), "non-positive"),
        (lambda c: c.__setitem__((slice(None), 2), 50.0), "constant"),
    ],
)
def test_kuramoto_rejects_bad_prices(mutate, message):
    close = _prices(np.random.default_rng(7), 128, 4)
    mutate(close)
    with pytest.raises(ValueError, match=message):
        kuramoto_order(close)


def test_kuramoto_rejects_too_short_or_single_symbol():
    with pytest.raises(ValueError, match="too short"):
        kuramoto_order(_prices(np.random.default_rng(8), 30, 4), window=64)
    with pytest.raises(ValueError, match="symbols"):
        kuramoto_order(_prices(np.random.default_rng(8), 128, 1))


@pytest.mark.parametrize("window", [1, 2, 3])
def test_windows_too_short_for_a_phase_are_rejected(window):
    close = _prices(np.random.default_rng(8), 50, 3)
    with pytest.raises(ValueError, match="window must be >= 4"):
        kuramoto_order(close, window=window, step=window)


def test_shortest_window_has_defined_phases():
    res = kuramoto_order(_prices(np.random.default_rng(9), 40, 4), window=4, step=4)
    assert np.all(np.isfinite(res.r)) and np.all((res.r > 0) & (res.r <= 1 + 1e-12))
