"""Shared pytest fixtures. Each engineer appends their own section; keep sections independent."""

from collections.abc import Iterator

import pytest

# --- storage: a real S3 endpoint (moto's threaded server on 127.0.0.1) --------------------------------------
from tradepulse_assets_tests.support.s3 import S3Endpoint, moto_s3


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """One moto S3 server per test session with the bucket ``tradepulse-data``; call
    ``s3_endpoint.create_bucket()`` for a fresh bucket when a test must not see others' objects."""
    with moto_s3("tradepulse-data") as endpoint:
        yield endpoint
