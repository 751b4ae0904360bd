"""DFA-1 and R/S: exact-data accuracy (Davies-Harte fGn), agreement with plain NumPy references, validation."""

from __future__ import annotations

import numpy as np
import pytest

from tradepulse_assets.indicators import (
    default_dfa_scales,
    default_rs_nvals,
    dfa,
    hurst_dfa,
    hurst_rs,
    rescaled_range,
    sliding_windows,
)
from tradepulse_assets.indicators._jit import forced_mode

from .references import dfa_reference, fgn_davies_harte, rs_hurst_reference

N = 4096
REPLICATES = 50
SCALES = default_dfa_scales(N)  # 16 log-spaced scales, 8 .. N/8


@pytest.fixture(scope="module")
def fgn_batches() -> dict[float, np.ndarray]:
    rng = np.random.default_rng(20260302)
    return {h: np.stack([fgn_davies_harte(N, h, rng) for _ in range(REPLICATES)]) for h in (0.3, 0.5, 0.7)}


def test_davies_harte_generator_has_the_fgn_lag1_autocorrelation(fgn_batches):
    # the accuracy test below is only as good as its data: check the generator against rho(1) = 2^(2H-1) - 1
    for h, batch in fgn_batches.items():
        x = batch - batch.mean(axis=1, keepdims=True)
        rho1 = np.mean(np.sum(x[:, 1:] * x[:, :-1], axis=1) / np.sum(x * x, axis=1))
        assert rho1 == pytest.approx(2 ** (2 * h - 1) - 1, abs=0.01)


@pytest.mark.parametrize("h", [0.3, 0.5, 0.7])
def test_dfa_recovers_hurst_of_exact_fgn(fgn_batches, h):
    est = hurst_dfa(fgn_batches[h], SCALES)  # 2-D: all replicates in one parallel call
    bias = float(np.mean(est) - h)
    std = float(np.std(est, ddof=1))
    print(f"DFA H={h}: mean={np.mean(est):.4f} bias={bias:+.4f} std={std:.4f}")
    assert abs(bias) <= 0.015
    assert std <= 0.03


def test_dfa_fluctuation_matches_plain_numpy_reference(fgn_batches):
    x = fgn_batches[0.7][0][:1000]  # 1000 % s != 0 for most scales: exercises the backward segments
    scales = np.array([4, 7, 16, 33, 64, 100, 250])
    h, sc, fluct = dfa(x, scales)
    ref = dfa_reference(x, scales)
    np.testing.assert_allclose(fluct, ref, rtol=1e-12, atol=0)
    assert h == pytest.approx(np.polyfit(np.log(scales), np.log(ref), 1)[0], abs=1e-12)
    np.testing.assert_array_equal(sc, scales)


def test_rs_matches_plain_numpy_anis_lloyd_reference(fgn_batches):
    x = fgn_batches[0.3][1][:2000]
    nvals = np.array([8, 13, 21, 34, 55, 89, 144, 233, 377])
    h, nv, rs = rescaled_range(x, nvals)
    ref_h, ref_rs = rs_hurst_reference(x, nvals)
    np.testing.assert_allclose(rs, ref_rs, rtol=1e-12)
    assert h == pytest.approx(ref_h, abs=1e-9)


def test_rs_on_white_noise_is_near_half_after_correction(fgn_batches):
    est = hurst_rs(fgn_batches[0.5], np.unique(np.round(np.logspace(np.log10(16), np.log10(1024), 10)).astype(int)))
    assert abs(float(np.mean(est)) - 0.5) < 0.03


def test_two_dimensional_input_equals_row_by_row(fgn_batches):
    windows = sliding_windows(fgn_batches[0.5][2], 1024, 256)
    scales = default_dfa_scales(1024)
    batch = hurst_dfa(windows, scales)
    rows = [hurst_dfa(w, scales) for w in windows]
    np.testing.assert_array_equal(batch, rows)
    batch_rs = hurst_rs(windows)
    assert batch_rs.shape == (windows.shape[0],)
    assert np.all(np.isfinite(batch_rs))
    np.testing.assert_array_equal(batch_rs, [hurst_rs(w) for w in windows])  # a window alone: same bits


@pytest.mark.parametrize(
    "x, message",
    [
        (np.r_[np.ones(50), np.nan, np.ones(49)], "non-finite"),
        (np.ones(200), "constant"),
        (np.arange(5.0), "too short"),
        (np.zeros((2, 2, 2)), "1-D or 2-D"),
    ],
)
def test_dfa_and_rs_reject_bad_input_with_named_fault(x, message):
    with pytest.raises(ValueError, match=message):
        hurst_dfa(x)
    with pytest.raises(ValueError, match=message):
        hurst_rs(x)


def test_bad_scales_are_rejected():
    x = np.random.default_rng(1).standard_normal(500)
    with pytest.raises(ValueError, match="strictly increasing"):
        hurst_dfa(x, [16, 8, 32])
    with pytest.raises(ValueError, match="must lie in"):
        hurst_dfa(x, [2, 16])
    with pytest.raises(ValueError, match="integers"):
        hurst_rs(x, [8.5, 16])


@pytest.mark.parametrize("h, max_bias", [(0.3, 0.06), (0.5, 0.02), (0.7, 0.06)])
def test_rs_accuracy_on_exact_fgn_is_as_documented(fgn_batches, h, max_bias):
    # docs/indicators.md: Anis-Lloyd-Peters corrected R/S is pulled towards 0.5 by about 0.04 at H = 0.3 and 0.7
    est = hurst_rs(fgn_batches[h])
    bias = float(np.mean(est) - h)
    print(f"R/S H={h}: mean={np.mean(est):.4f} bias={bias:+.4f} std={np.std(est, ddof=1):.4f}")
    assert abs(bias) <= max_bias
    assert (bias > 0) == (h < 0.5) or h == 0.5  # the pull is towards 0.5, as documented


def test_rs_keeps_its_precision_on_subseries_far_from_the_series_mean(fgn_batches):
    # S comes from prefix sums of squares unless the subtraction would lose digits: a level shift puts
    # every subseries far from the series' mean, and they must still match the two-pass reference
    x = fgn_batches[0.5][4][:2048].copy()
    x[1024:] += 50.0
    nvals = np.array([8, 16, 32, 64, 128, 256])
    h, _, rs = rescaled_range(x, nvals)
    ref_h, ref_rs = rs_hurst_reference(x, nvals)
    np.testing.assert_allclose(rs, ref_rs, rtol=1e-11)
    assert h == pytest.approx(ref_h, abs=1e-12)


def test_rs_excludes_constant_nonzero_subseries_despite_rounding_residue(fgn_batches):
    x = fgn_batches[0.5][3][:1024].copy()
    x[100:400] = 0.1  # the mean of a constant 0.1 run is not exactly 0.1: residue would give R/S ~ 1
    nvals = np.array([8, 16, 32, 64, 128])
    h, _, rs = rescaled_range(x, nvals)
    ref_h, ref_rs = rs_hurst_reference(x, nvals)
    np.testing.assert_allclose(rs, ref_rs, rtol=1e-12)
    assert h == pytest.approx(ref_h, abs=1e-9)


@pytest.mark.parametrize("n", [32, 39, 64, 71, 72, 79, 127])
def test_dfa_default_scales_refuse_series_too_short_to_span_a_factor_of_two(n):
    x = np.random.default_rng(n).standard_normal(n)
    with pytest.raises(ValueError, match="too short for the default scales"):
        hurst_dfa(x)


def test_default_scales_span_a_factor_of_two_at_the_shortest_length():
    assert default_dfa_scales(128).tolist()[0] * 2 <= default_dfa_scales(128).tolist()[-1]
    assert len(default_dfa_scales(128)) >= 3
    assert default_rs_nvals(64)[-1] >= 2 * default_rs_nvals(64)[0]
    with pytest.raises(ValueError, match="too short for the default scales"):
        default_rs_nvals(63)


@pytest.mark.parametrize("mode", ["serial", "parallel"])
@pytest.mark.parametrize("factor", [1e-171, 1e-300, 1e170])
def test_extreme_magnitudes_give_the_same_hurst_as_unit_scale(fgn_batches, mode, factor):
    x = fgn_batches[0.7][:4, :1024]
    with forced_mode(mode):
        h_dfa, _, f = dfa(x * factor)
        h_rs = hurst_rs(x * factor)
        ref_dfa, _, ref_f = dfa(x)
        ref_rs = hurst_rs(x)
    np.testing.assert_allclose(h_dfa, ref_dfa, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_rs, ref_rs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f / factor, ref_f, rtol=1e-9)


def test_serial_and_parallel_entry_points_agree_bit_for_bit(fgn_batches):
    x = fgn_batches[0.3][:8, :2048]
    with forced_mode("serial"):
        serial = (hurst_dfa(x), hurst_rs(x))
    with forced_mode("parallel"):
        parallel = (hurst_dfa(x), hurst_rs(x))
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[1], parallel[1])
