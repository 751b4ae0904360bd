"""Kernel compilation plumbing: stale-cache refresh, the serial/parallel decision, the install-time warm-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from tradepulse_assets.indicators import _jit


def test_stale_cache_is_cleared_once_when_the_sources_change(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    (cache,) = _jit.cache_dirs()
    cache.mkdir(parents=True)
    stale = [cache / "ricci._ollivier_serial-1.py311.nbi", cache / "ricci._ollivier_serial-1.py311.1.nbc"]
    for path in stale:
        path.write_bytes(b"old kernel")
    (cache / _jit.STAMP_NAME).write_text("digest of older sources\n")
    keep = cache / "unrelated.txt"
    keep.write_text("not a cache file")

    assert _jit.refresh_stale_cache() is True
    assert not any(p.exists() for p in stale) and keep.exists()
    assert (cache / _jit.STAMP_NAME).read_text().strip() == _jit.sources_digest()

    fresh = cache / "hurst._rs_serial-1.py311.nbi"
    fresh.write_bytes(b"current kernel")
    assert _jit.refresh_stale_cache() is False  # same sources: the cache is left alone
    assert fresh.exists()


def test_small_work_stays_serial_and_forced_mode_overrides(monkeypatch):
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    assert not _jit.use_threads(1e3)
    assert _jit.use_threads(1e9)
    with _jit.forced_mode("parallel"):
        assert _jit.use_threads(1.0)
    with _jit.forced_mode("serial"):
        assert not _jit.use_threads(1e12)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    assert not _jit.use_threads(1e12)
    with pytest.raises(ValueError, match="mode must be"):
        with _jit.forced_mode("threads"):
            pass


MISSES = """
import json, numba, sys
from tradepulse_assets.indicators.warmup import warm_up
from tradepulse_assets.indicators import _jit, _least_squares, features, hurst, kuramoto, ricci, transport
warm_up()
misses = {}
for mod in (_least_squares, hurst, kuramoto, ricci, transport):
    for name, obj in vars(mod).items():
        if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.stats.cache_misses:
            misses[f"{mod.__name__}.{name}"] = sum(obj.stats.cache_misses.values())
print(json.dumps(misses))
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)  # when the sources changed since `make install`, the warm-up compiles every kernel
def test_warm_up_leaves_nothing_to_compile_for_the_next_process():
    """The package's own cache, as ``make install`` left it: in CI that was a cold compile into an empty cache
    minutes earlier, so a second cold compile here would only repeat it (about a minute on 2 cores)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    subprocess.run([sys.executable, "-m", "tradepulse_assets.indicators.warmup"], env=env, check=True)
    out = subprocess.run([sys.executable, "-c", MISSES], env=env, check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}
