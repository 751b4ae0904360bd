"""Fixtures that give the storage behaviour tests one store of each kind."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tradepulse_assets.storage.object_store import (
    LocalObjectStore,
    ObjectStore,
    S3Credentials,
    S3ObjectStore,
)
from tradepulse_assets_tests.support.s3 import S3Endpoint


def s3_store(endpoint: S3Endpoint, prefix: str = "") -> S3ObjectStore:
    """An S3 store on a fresh bucket, with the endpoint's credentials (so polars can read it too)."""
    credentials = S3Credentials(endpoint.access_key_id, endpoint.secret_access_key, region=endpoint.region)
    return S3ObjectStore(endpoint.client(), endpoint.create_bucket(), prefix, credentials=credentials)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """The same behaviour test runs against a local directory and a real S3 HTTP endpoint (moto)."""
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "store")
    else:
        yield s3_store(request.getfixturevalue("s3_endpoint"))
