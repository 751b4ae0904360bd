"""A deterministic market simulator: one-minute OHLCV bars with the structure our indicators look for.

Why a factor model with regimes and long memory rather than independent random walks: the indicator layer
measures cross-symbol synchrony (Kuramoto), correlation-network curvature (Ricci) and persistence (Hurst).
On independent Gaussian walks all three are trivially null, so a broken kernel and a correct one look alike.
Here log returns are

    r[i, t] = sigma_i * u(t) * v(state_t)
              * (a_i(state_t) * m_t + b_i * s[sector(i), t] + c_i(state_t) * e[i, t])

with a market factor ``m`` and the idiosyncratic parts ``e`` drawn as fractional Gaussian noise (Hurst > 0.5),
sector factors ``s``, a two-state (calm / stress) Markov regime that raises volatility and the market loading
(so correlation rises in stress), and an intraday U-shaped volatility and volume profile ``u``.

Two universes: ``"demo"`` (the default: 5 sectors, a bar every minute for every symbol) and ``"realistic"``
(``REALISTIC_UNIVERSE``: 11 sectors split into industries of about 25 symbols with their own factor, and a
liquidity ladder: the 500 largest symbols trade every minute, smaller ones miss a growing share of minutes, down
to a trade in about 35 % of minutes for the smallest of 3,000, as in a US equity universe). Benchmarks use the
realistic universe at 500 to 3,000 XNYS symbols; the demo stays small.

Determinism: every session draws from ``SeedSequence([seed, crc32(market), session ordinal])``, so one session
can be regenerated alone and identically; the slowly-moving price level between sessions comes from a per
(seed, market, universe) daily path computed once. Bars sit exactly on ``calendar.minutes(session)``.
"""

import datetime as dt
import functools
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from tradepulse_assets.markets import Market, calendar_for
from tradepulse_assets.markets.bars import BAR_COLUMNS, OPTIONAL_BAR_COLUMNS

SIM_EPOCH = dt.date(2019, 1, 1)
SIM_END = dt.date(2028, 12, 31)
PRICE_DECIMALS = 4
N_SECTORS = 5
REGIME_SWITCH_PROB = 1.0 / 120.0  # per minute: regimes last about two hours
STRESS_VOL = 2.0
LOADINGS = {  # (market loading, sector loading) per regime; idiosyncratic loading completes unit variance
    0: (0.45, 0.35),
    1: (0.80, 0.30),
}
MARKET_HURST = 0.70
IDIO_HURST_RANGE = (0.58, 0.75)
BAR_OUTPUT_COLUMNS = {**BAR_COLUMNS, **OPTIONAL_BAR_COLUMNS}
UNIVERSES = ("demo", "realistic")
REALISTIC_SECTORS = 11  # GICS sectors
REALISTIC_INDUSTRY_SIZE = 25  # symbols per industry (about 120 industries at 3,000 symbols)
REALISTIC_LOADINGS = {0: (0.45, 0.25, 0.30), 1: (0.80, 0.20, 0.25)}  # market, sector, industry per regime
REALISTIC_FULLY_LIQUID = 500  # the largest symbols have a bar every minute
REALISTIC_MIN_TRADE_SHARE = 0.35  # share of minutes with a trade for the smallest symbol of 3,000


class SimulatorError(ValueError):
    """A session the simulator cannot produce (not a trading session, outside its range)."""


@dataclass(frozen=True)
class UniverseParams:
    """Per-symbol constants of one (seed, market, universe size): they do not change between sessions."""

    symbols: tuple[str, ...]
    sector: np.ndarray  # int, (N,)
    beta: np.ndarray  # market loading multiplier, (N,)
    sigma: np.ndarray  # per-minute volatility, (N,)
    hurst: np.ndarray  # Hurst exponent of the idiosyncratic component, (N,)
    base_volume: np.ndarray  # mean shares per minute, (N,)
    daily_log_level: np.ndarray  # log price at each day's open since SIM_EPOCH, (days, N)


def universe_symbols(market: Market, n_symbols: int | None = None) -> tuple[str, ...]:
    n = market.universe_size if n_symbols is None else int(n_symbols)
    if n <= 0:
        raise SimulatorError(f"market {market.market_id}: universe size must be positive, got {n}")
    return tuple(f"{market.symbol_prefix}{i:03d}" for i in range(n))


def _market_key(market_id: str) -> int:
    return zlib.crc32(market_id.encode())  # stable across processes, unlike hash()


def session_seed(seed: int, market_id: str, session: dt.date) -> np.random.SeedSequence:
    """The seed of one (seed, market, session): independent of every other session."""
    return np.random.SeedSequence([int(seed), _market_key(market_id), session.toordinal()])


@functools.lru_cache(maxsize=32)
def universe_params(seed: int, market_id: str, symbols: tuple[str, ...]) -> UniverseParams:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _market_key(market_id), 0]))
    n = len(symbols)
    days = (SIM_END - SIM_EPOCH).days + 1
    daily_vol = rng.uniform(0.012, 0.025, n)
    base_price = rng.uniform(20.0, 400.0, n)
    shocks = rng.standard_normal((days, n)) * daily_vol
    level = np.log(base_price) + np.cumsum(shocks, axis=0) - shocks[0]
    return UniverseParams(
        symbols=symbols,
        sector=np.arange(n) % min(N_SECTORS, n),
        beta=rng.uniform(0.7, 1.25, n),
        sigma=daily_vol / np.sqrt(390.0),
        hurst=rng.uniform(*IDIO_HURST_RANGE, n),
        base_volume=np.exp(rng.normal(np.log(5_000.0), 0.8, n)),
        daily_log_level=level,
    )


def fgn(rng: np.random.Generator, hurst: np.ndarray, length: int) -> np.ndarray:
    """Fractional Gaussian noise, unit variance, one row per Hurst exponent (Davies-Harte, vectorised).

    Circulant embedding of the fGn autocovariance gamma(k) = (|k+1|^2H - 2|k|^2H + |k-1|^2H) / 2.
    """
    hurst = np.atleast_1d(np.asarray(hurst, dtype=float))
    k = np.arange(length + 1, dtype=float)
    h2 = 2.0 * hurst[:, None]
    gamma = 0.5 * (np.abs(k + 1) ** h2 - 2.0 * np.abs(k) ** h2 + np.abs(k - 1) ** h2)
    circulant = np.concatenate([gamma, gamma[:, -2:0:-1]], axis=1)  # length 2 * length
    m = circulant.shape[1]
    eigen = np.clip(np.fft.fft(circulant, axis=1).real, 0.0, None)
    noise = rng.standard_normal((hurst.size, m)) + 1j * rng.standard_normal((hurst.size, m))
    return np.fft.fft(np.sqrt(eigen / m) * noise, axis=1).real[:, :length]


def u_profile(minutes: np.ndarray, depth: float) -> np.ndarray:
    """U-shaped intraday profile, 1 + depth * (2x - 1)^2 over each continuous segment (lunch breaks split)."""
    if minutes.size == 0:
        return np.ones(0)
    steps = np.diff(minutes).astype("timedelta64[m]").astype(np.int64)
    segment = np.concatenate([[0], np.cumsum(steps != 1)])
    profile = np.empty(minutes.size)
    for seg in np.unique(segment):
        idx = np.flatnonzero(segment == seg)
        x = np.linspace(0.0, 1.0, idx.size) if idx.size > 1 else np.zeros(1)
        profile[idx] = 1.0 + depth * (2.0 * x - 1.0) ** 2
    return profile


def regimes(rng: np.random.Generator, length: int) -> np.ndarray:
    """0 = calm, 1 = stress; a two-state Markov chain with symmetric switching."""
    start = int(rng.random() < 0.25)
    switches = rng.random(length) < REGIME_SWITCH_PROB
    switches[0] = False
    return (start + np.cumsum(switches)) % 2


def simulate_returns(rng: np.random.Generator, params: UniverseParams, minutes: np.ndarray) -> np.ndarray:
    """Log returns, shape (T, N)."""
    t = minutes.size
    state = regimes(rng, t)
    market = fgn(rng, np.array([MARKET_HURST]), t)[0]
    sectors = rng.standard_normal((t, int(params.sector.max()) + 1))
    idio = fgn(rng, params.hurst, t).T  # (T, N)
    a = np.where(state[:, None] == 1, LOADINGS[1][0], LOADINGS[0][0]) * params.beta[None, :]
    b = np.where(state == 1, LOADINGS[1][1], LOADINGS[0][1])[:, None]
    c = np.sqrt(np.clip(1.0 - a**2 - b**2, 0.05, None))
    vol = (
        params.sigma[None, :]
        * u_profile(minutes, 0.8)[:, None]
        * np.where(state == 1, STRESS_VOL, 1.0)[:, None]
    )
    return vol * (a * market[:, None] + b * sectors[:, params.sector] + c * idio)


def trade_share(n_symbols: int) -> np.ndarray:
    """Realistic universe: the share of minutes in which symbol ``i`` (by size rank) trades."""
    rank = np.arange(n_symbols, dtype=float)
    tail = np.clip((rank - REALISTIC_FULLY_LIQUID) / (3000.0 - REALISTIC_FULLY_LIQUID), 0.0, None)
    return np.clip(1.0 - (1.0 - REALISTIC_MIN_TRADE_SHARE) * tail, REALISTIC_MIN_TRADE_SHARE, 1.0)


def realistic_returns(rng: np.random.Generator, params: UniverseParams, minutes: np.ndarray) -> np.ndarray:
    """Log returns (T, N) of the realistic universe: market, 11 sectors, nested industries, long-memory idio."""
    t, n = minutes.size, len(params.symbols)
    state = regimes(rng, t)
    market = fgn(rng, np.array([MARKET_HURST]), t)[0]
    sector = np.arange(n) % REALISTIC_SECTORS
    industry = (np.arange(n) // (REALISTIC_SECTORS * REALISTIC_INDUSTRY_SIZE)) * REALISTIC_SECTORS + sector
    sectors = rng.standard_normal((t, REALISTIC_SECTORS))
    industries = rng.standard_normal((t, int(industry.max()) + 1))
    idio = fgn(rng, params.hurst, t).T
    stress = state[:, None] == 1
    a = np.where(stress, REALISTIC_LOADINGS[1][0], REALISTIC_LOADINGS[0][0]) * params.beta[None, :]
    b = np.where(stress, REALISTIC_LOADINGS[1][1], REALISTIC_LOADINGS[0][1])
    c = np.where(stress, REALISTIC_LOADINGS[1][2], REALISTIC_LOADINGS[0][2])
    e = np.sqrt(np.clip(1.0 - a**2 - b**2 - c**2, 0.05, None))
    vol = params.sigma[None, :] * u_profile(minutes, 0.8)[:, None] * np.where(stress, STRESS_VOL, 1.0)
    return vol * (a * market[:, None] + b * sectors[:, sector] + c * industries[:, industry] + e * idio)


def simulate_session(
    market: Market, session: dt.date, seed: int = 0, n_symbols: int | None = None, universe: str = "demo"
) -> pl.DataFrame:
    """All bars of one session, sorted by (ts, symbol), with the bar schema plus trade_count and vwap.

    ``universe="realistic"`` draws the realistic universe (module docstring): minutes without a trade have
    no bar, as a vendor publishes them.
    """
    if universe not in UNIVERSES:
        raise SimulatorError(f"market {market.market_id}: universe must be one of {UNIVERSES}, got {universe!r}")
    if not (SIM_EPOCH <= session <= SIM_END):
        raise SimulatorError(f"market {market.market_id}: session {session} outside {SIM_EPOCH}..{SIM_END}")
    calendar = calendar_for(market.market_id, market.calendar)
    if not calendar.is_session(session):
        raise SimulatorError(f"market {market.market_id}: {session} is not a trading session")
    minutes = calendar.minutes(session)
    params = universe_params(seed, market.market_id, universe_symbols(market, n_symbols))
    rng = np.random.default_rng(session_seed(seed, market.market_id, session))
    t, n = minutes.size, len(params.symbols)

    realistic = universe == "realistic"
    returns = realistic_returns(rng, params, minutes) if realistic else simulate_returns(rng, params, minutes)
    p0 = np.exp(params.daily_log_level[(session - SIM_EPOCH).days])
    log_close = np.log(p0)[None, :] + np.cumsum(returns, axis=0)
    close = np.exp(log_close)
    open_ = np.vstack([p0[None, :], close[:-1]])
    wick = np.abs(rng.standard_normal((2, t, n))) * 0.5 * np.abs(returns).mean(axis=0, keepdims=True)
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    open_, high, low, close = (np.round(x, PRICE_DECIMALS) for x in (open_, high, low, close))

    activity = u_profile(minutes, 1.5)[:, None] * (1.0 + 200.0 * np.abs(returns))
    volume = np.round(params.base_volume[None, :] * activity * rng.lognormal(0.0, 0.35, (t, n)))
    trade_count = np.maximum(1, np.round(volume / 80.0)).astype(np.int64)
    vwap = np.round((open_ + high + low + close) / 4.0, PRICE_DECIMALS)

    symbol_index = np.tile(np.arange(n), t)
    frame = pl.DataFrame(
        {
            "symbol": pl.Series("symbol", params.symbols, dtype=pl.String).gather(symbol_index),
            "ts": pl.Series("ts", np.repeat(minutes, n)).dt.replace_time_zone("UTC"),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
            "trade_count": trade_count.ravel(),
            "vwap": vwap.ravel(),
        }
    )
    if realistic:  # a minute without a trade has no bar (the price path still moves underneath)
        traded = rng.random((t, n)) < trade_share(n)[None, :]
        traded[0] = True  # every symbol opens
        frame = frame.filter(pl.Series(traded.ravel()))
    return frame.cast(BAR_OUTPUT_COLUMNS)
