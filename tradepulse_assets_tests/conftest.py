"""Fixtures shared across test folders: a real S3 endpoint and the state database on each backend."""

import signal
from collections.abc import Iterator

import pytest

from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.incidents.db_support import BACKENDS, db_target
from tradepulse_assets_tests.support.s3 import S3Endpoint, moto_s3


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT handled as in a terminal, even when the suite was started in the background.

    A shell starts a background job (``.ci/run &``) with SIGINT ignored, and an ignored signal survives exec:
    every process a test starts (``vendor serve``, the devserver) would ignore the Ctrl-C the test sends it.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _signal_dispositions_restored() -> Iterator[None]:
    """Each test leaves SIGINT/SIGTERM as it found them.

    Dagster's in-process execution points SIGTERM at the SIGINT handler, which is SIG_IGN when the suite runs
    in the background; an ignored signal survives exec, so processes a later test spawns would ignore SIGTERM
    and ``Pool.terminate`` would wait for them forever.
    """
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        if handler is not None and signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """One moto S3 server per test session with the bucket ``tradepulse-data``; call
    ``s3_endpoint.create_bucket()`` for a fresh bucket when a test must not see others' objects."""
    with moto_s3("tradepulse-data") as endpoint:
        yield endpoint


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path):
    """A fresh state database on SQLite and, when a server is available, PostgreSQL (see db_support)."""
    with db_target(request.param, tmp_path) as t:
        yield t


@pytest.fixture
def db(target) -> Iterator[StateDB]:
    database = StateDB(target.url)
    yield database
    database.close()
