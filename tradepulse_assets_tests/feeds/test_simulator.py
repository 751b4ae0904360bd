import datetime as dt

import numpy as np
import polars as pl
import pytest

from tradepulse_assets.markets import calendar_for
from tradepulse_assets.markets.bars import BarSchema
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.simulator import SimulatorError, fgn, simulate_session

# Both 2026 DST changes: US clocks move 2026-03-08, UK clocks 2026-03-29.
DST_RANGES = [(dt.date(2026, 3, 5), dt.date(2026, 3, 11)), (dt.date(2026, 3, 26), dt.date(2026, 4, 1))]
MARKETS = ["XNYS", "XLON", "XHKG", "CRYPTO"]


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_publishes_the_same_bytes_and_a_session_regenerates_alone(tmp_path, registry):
    for name in ("a", "b"):
        Publisher(drop_store(tmp_path / name), seed=42, n_symbols=4).publish_range(
            "XNYS", dt.date(2026, 3, 9), dt.date(2026, 3, 11)
        )
    alone = tmp_path / "alone"
    Publisher(drop_store(alone), seed=42, n_symbols=4).publish_session("XNYS", dt.date(2026, 3, 11))
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b and len([k for k in a if k.endswith(".parquet")]) == 3
    key = "XNYS/2026-03-11/bars.parquet"
    assert _files(alone)[key] == a[key]
    Publisher(drop_store(tmp_path / "c"), seed=43, n_symbols=4).publish_session(
        "XNYS", dt.date(2026, 3, 11)
    )
    assert _files(tmp_path / "c")[key] != a[key]


@pytest.mark.parametrize("market_id", MARKETS)
def test_bars_fall_exactly_on_the_calendar_minutes_across_both_2026_dst_changes(registry, market_id):
    market = registry.get(market_id)
    calendar = calendar_for(market.market_id, market.calendar)
    for start, end in DST_RANGES:
        for session in calendar.sessions(start, end):
            bars = simulate_session(market, session, seed=1, n_symbols=3)
            expected = pl.Series(calendar.minutes(session)).dt.replace_time_zone("UTC")
            for symbol, group in bars.group_by("symbol"):
                assert group["ts"].to_list() == expected.to_list(), (market_id, session, symbol)


@pytest.mark.parametrize(
    "market_id, session, first_bar",
    [
        ("XNYS", dt.date(2026, 3, 6), "14:30"),  # before the US change
        ("XNYS", dt.date(2026, 3, 9), "13:30"),  # after it
        ("XLON", dt.date(2026, 3, 27), "08:00"),  # before the UK change
        ("XLON", dt.date(2026, 3, 31), "07:00"),  # after it
        ("XHKG", dt.date(2026, 3, 10), "01:30"),
    ],
)
def test_first_bar_follows_published_session_hours_in_utc(registry, market_id, session, first_bar):
    bars = simulate_session(registry.get(market_id), session, seed=1, n_symbols=2)
    assert bars["ts"].min().strftime("%H:%M") == first_bar


def test_lunch_break_has_no_bars(registry):
    bars = simulate_session(registry.get("XHKG"), dt.date(2026, 3, 10), seed=1, n_symbols=2)
    hours = bars["ts"].dt.strftime("%H:%M")
    assert not hours.is_between("04:00", "04:59").any() and bars.height == 2 * 330


def test_bars_are_valid_positive_and_ohlc_consistent(registry):
    bars = simulate_session(registry.get("XNYS"), dt.date(2026, 3, 10), seed=9, n_symbols=50)
    BarSchema.validate(bars)
    assert (bars["low"] > 0).all() and (bars["volume"] >= 0).all()
    assert bars.select((pl.col("low") <= pl.min_horizontal("open", "close")).all()).item()
    assert bars.select((pl.col("high") >= pl.max_horizontal("open", "close")).all()).item()
    assert bars["vwap"].is_between(bars["low"], bars["high"]).all()


def test_volume_profile_is_u_shaped(registry):
    bars = simulate_session(registry.get("XNYS"), dt.date(2026, 3, 10), seed=3, n_symbols=40)
    per_minute = bars.group_by("ts").agg(pl.col("volume").sum()).sort("ts")["volume"].to_numpy()
    edges = np.r_[per_minute[:30], per_minute[-30:]].mean()
    assert edges > 1.5 * per_minute[150:240].mean()


def test_fgn_matches_the_theoretical_lag_one_autocorrelation():
    # Reference: the fGn autocorrelation at lag 1 is 2^(2H-1) - 1 (closed form, not the generator's code).
    rng = np.random.default_rng(0)
    for hurst in (0.5, 0.7):
        x = fgn(rng, np.full(400, hurst), 512)
        x = x - x.mean(axis=1, keepdims=True)
        rho = ((x[:, 1:] * x[:, :-1]).sum(axis=1) / (x * x).sum(axis=1)).mean()
        assert rho == pytest.approx(2 ** (2 * hurst - 1) - 1, abs=0.02)
        assert x.var() == pytest.approx(1.0, abs=0.05)


def test_returns_are_cross_correlated_and_persistent(registry):
    bars = simulate_session(registry.get("XNYS"), dt.date(2026, 3, 10), seed=21, n_symbols=30)
    wide = bars.pivot(on="symbol", index="ts", values="close").sort("ts").drop("ts").to_numpy()
    returns = np.diff(np.log(wide), axis=0)
    corr = np.corrcoef(returns.T)
    mean_pairwise = corr[np.triu_indices_from(corr, 1)].mean()
    assert mean_pairwise > 0.15  # the market factor: independent walks give ~0
    z = returns / returns.std(axis=0)
    lag1 = np.mean([np.corrcoef(z[1:, j], z[:-1, j])[0, 1] for j in range(z.shape[1])])
    assert lag1 > 0.05  # long memory (H > 0.5): a random walk's returns give ~0


def test_non_sessions_are_refused(registry):
    with pytest.raises(SimulatorError, match="not a trading session"):
        simulate_session(registry.get("XNYS"), dt.date(2026, 3, 7))


def test_realistic_universe_has_industries_and_a_liquidity_ladder(registry):
    from tradepulse_assets.feeds.simulator import trade_share

    share = trade_share(3000)
    assert share[:500].min() == 1.0 and share[-1] == pytest.approx(0.35, abs=1e-3) and np.all(np.diff(share) <= 0)
    bars = simulate_session(registry.get("XNYS"), dt.date(2026, 3, 10), seed=5, n_symbols=600, universe="realistic")
    BarSchema.validate(bars)
    counts = bars.group_by("symbol").len().sort("symbol")["len"].to_numpy()
    assert counts[:500].min() == 390 and counts[500:].min() < 390  # the tail misses minutes
    wide = bars.pivot(on="symbol", index="ts", values="close").sort("ts")
    close = wide.select([f"NY{i:03d}" for i in range(500)]).to_numpy()  # the fully liquid ones
    rho = np.corrcoef(np.diff(np.log(close), axis=0), rowvar=False)
    same_industry = np.mean([rho[i, i + 11] for i in range(0, 220)])  # same sector, same block of 275
    same_sector = np.mean([rho[i, i + 275] for i in range(0, 220)])  # same sector, another industry
    other_sector = np.mean([rho[i, i + 1] for i in range(0, 220)])
    assert same_industry > same_sector + 0.03 > other_sector + 0.03


def test_unknown_universe_is_rejected(registry):
    with pytest.raises(SimulatorError, match="universe must be one of"):
        simulate_session(registry.get("XNYS"), dt.date(2026, 3, 10), n_symbols=3, universe="huge")
