"""Benchmark: simulate one XNYS session of 500 symbols, vectorised vs a naive per-symbol loop.

The peer is what one writes first: a loop over symbols, each drawing its own path and building a polars
frame, with the same model ingredients (market factor shared, per-symbol long-memory noise, U-shaped
volume). The ratio printed is peer time / our time. Timings are printed, never asserted.

    .venv/bin/python benchmarks/bench_simulator.py [--symbols 500] [--repeat 5]
"""

import argparse
import datetime as dt
import statistics
import time

import numpy as np
import polars as pl

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.feeds.simulator import fgn, simulate_session, u_profile

SESSION = dt.date(2026, 3, 10)


def naive_session(market, session, seed: int, n_symbols: int) -> pl.DataFrame:
    """Per-symbol loop: the straightforward implementation the vectorised simulator replaces."""
    minutes = calendar_for(market.market_id, market.calendar).minutes(session)
    rng = np.random.default_rng(seed)
    market_factor = fgn(rng, np.array([0.7]), minutes.size)[0]
    profile = u_profile(minutes, 0.8)
    frames = []
    for i in range(n_symbols):
        idio = fgn(rng, np.array([rng.uniform(0.58, 0.75)]), minutes.size)[0]
        sigma = rng.uniform(0.012, 0.025) / np.sqrt(390)
        rows, price = [], rng.uniform(20, 400)
        for t in range(minutes.size):
            r = sigma * profile[t] * (0.45 * market_factor[t] + 0.89 * idio[t])
            close = price * np.exp(r)
            wick = abs(rng.standard_normal()) * sigma * 0.5
            rows.append(
                (
                    f"NY{i:03d}",
                    minutes[t].item(),
                    price,
                    max(price, close) * np.exp(wick),
                    min(price, close) * np.exp(-wick),
                    close,
                    float(round(5000 * profile[t])),
                )
            )
            price = close
        frames.append(
            pl.DataFrame(
                rows, schema=["symbol", "ts", "open", "high", "low", "close", "volume"], orient="row"
            )
        )
    return pl.concat(frames).sort("ts", "symbol")


def best_of(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    market = load_registry().get("XNYS")
    simulate_session(market, SESSION, 0, args.symbols)  # warm caches (universe parameters, calendar)
    bars = simulate_session(market, SESSION, 0, args.symbols).height
    ours_best, ours_median = best_of(lambda: simulate_session(market, SESSION, 0, args.symbols), args.repeat)
    peer_best, peer_median = best_of(
        lambda: naive_session(market, SESSION, 0, args.symbols), max(1, args.repeat // 2)
    )
    print(f"XNYS {SESSION}, {args.symbols} symbols, {bars} bars")
    print(
        f"vectorised simulator: {ours_median:.3f} s/session (best {ours_best:.3f}), "
        f"{bars / ours_median:,.0f} bars/s"
    )
    print(
        f"naive per-symbol loop: {peer_median:.3f} s/session (best {peer_best:.3f}), "
        f"{bars / peer_median:,.0f} bars/s"
    )
    print(f"speed-up (peer / ours, medians): {peer_median / ours_median:.1f}x")


if __name__ == "__main__":
    main()
