"""Fixtures shared across test folders: a real S3 endpoint and the state database on each backend."""

from collections.abc import Iterator

import pytest

from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.incidents.db_support import BACKENDS, db_target
from tradepulse_assets_tests.support.s3 import S3Endpoint, moto_s3


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
