"""One home for how the indicator kernels are compiled, cached and threaded.

Why: numba flags were repeated on every decorator, its on-disk cache goes stale when a helper module
that kernels inline changes (the cache is keyed on the kernel's own file only), and with 2 threads a
parallel region costs 20-30 ms when the cores are busy, so a small call ran slower threaded than
serial. Here:

* ``kernel`` / ``parallel_kernel``: the flags (``cache=True``, ``error_model="numpy"`` so a division
  by zero gives inf/NaN instead of an exception that a parallel region turns into ``SystemError``).
* ``refresh_stale_cache``: the indicator sources are hashed; when the hash differs from the one the
  cache was built with, every cached indicator kernel is deleted (run when this module is imported,
  before any kernel loads from the cache).
* ``use_threads(work)``: the serial/parallel decision. A kernel has a serial and a parallel entry
  point and takes the parallel one only when the estimated work is large enough to repay the
  threading floor (and more than one thread is configured).
* ``run_split(tasks, work)``: independent pieces of work (a session's windows) run side by side on
  the configured threads, each with serial kernels: the kernels release the GIL (``nogil``), so the
  parts that are serial by nature (correlation, spanning tree, graph, Python glue) use both cores too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba

from tradepulse_assets.core.io import atomic_write

PACKAGE_DIR = Path(__file__).resolve().parent
STAMP_NAME = "numba-sources.sha256"
CACHE_SUFFIXES = (".nbi", ".nbc")

# Below this many elementary operations (about 1 ns each) a serial call takes < ~30 ms: the parallel
# floor on a busy 2-core machine would cost as much as the work itself.
PARALLEL_MIN_WORK = 3e7

_FLAGS = {"cache": True, "error_model": "numpy", "nogil": True}
_forced = threading.local()  # per thread: run_split's workers are forced serial without touching the caller


def _forced_mode() -> str | None:
    return getattr(_forced, "mode", None)


def kernel(fn=None, **extra):
    """``numba.njit`` with the package's flags (``@kernel`` or ``@kernel(fastmath=True)``)."""
    if fn is None:
        return lambda f: numba.njit(**_FLAGS, **extra)(f)
    return numba.njit(**_FLAGS, **extra)(fn)


def parallel_kernel(fn=None, **extra):
    """A ``kernel`` compiled with ``parallel=True`` (use ``prange`` for the split loop)."""
    return kernel(fn, parallel=True, **extra)


def use_threads(work: float) -> bool:
    """True when a call of ``work`` elementary operations should take the parallel entry point."""
    if _forced_mode() is not None:
        return _forced_mode() == "parallel"
    return numba.get_num_threads() > 1 and work >= PARALLEL_MIN_WORK


@contextlib.contextmanager
def forced_mode(mode: str | None) -> Iterator[None]:
    """Force every kernel called from this thread to its ``"serial"`` or ``"parallel"`` entry point.

    Used by the warm-up and the tests; a forced mode also keeps ``run_split`` from splitting.
    """
    if mode not in (None, "serial", "parallel"):
        raise ValueError(f"mode must be 'serial', 'parallel' or None, got {mode!r}")
    previous = _forced_mode()
    _forced.mode = mode
    try:
        yield
    finally:
        _forced.mode = previous


def _serially(task: Callable):
    with forced_mode("serial"):
        return task()


def run_split(tasks: list[Callable], work: float) -> list:
    """Results of ``tasks`` in order; side by side on the configured threads when ``work`` repays it.

    Each worker runs its task with serial kernels (the split is the parallelism: no nested threads).
    In order, with the kernels' own serial/parallel choice, when the work is small, a single thread
    is configured, there is one task, or a mode is forced.
    """
    threads = numba.get_num_threads()
    if len(tasks) < 2 or _forced_mode() is not None or not use_threads(work):
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=min(threads, len(tasks)), thread_name_prefix="indicators") as pool:
        futures = [pool.submit(_serially, task) for task in tasks]
        return [f.result() for f in futures]


# ------------------------------------------------------------------------------------------- cache
def sources_digest() -> str:
    """SHA-256 over the package's Python sources (names and bytes), in a stable order."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_dirs() -> list[Path]:
    """Where numba keeps this package's cache: ``__pycache__`` here, or under ``NUMBA_CACHE_DIR``."""
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        return [PACKAGE_DIR / "__pycache__"]
    # numba mirrors the source directory's absolute path below NUMBA_CACHE_DIR
    return [Path(root) / str(PACKAGE_DIR).lstrip(os.sep)]


def clear_cache() -> int:
    """Delete every cached indicator kernel; returns how many files were removed."""
    removed = 0
    for d in cache_dirs():
        if not d.is_dir():
            continue
        for path in d.iterdir():
            if path.suffix in CACHE_SUFFIXES:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
    return removed


def refresh_stale_cache() -> bool:
    """Clear the cache if the sources changed since it was built; True when it was cleared."""
    digest = sources_digest()
    changed = False
    for d in cache_dirs():
        stamp = d / STAMP_NAME
        try:
            current = stamp.read_text().strip()
        except OSError:
            current = None
        if current == digest:
            continue
        changed = True
        clear_cache()
        try:
            atomic_write(stamp, (digest + "\n").encode(), fsync=False)  # a cache stamp: rebuilt if lost
        except OSError:  # a read-only install: numba then cannot cache either, nothing to protect
            pass
    return changed


# Every kernel module imports this one first, so this runs before any kernel loads its cache entry.
refresh_stale_cache()
