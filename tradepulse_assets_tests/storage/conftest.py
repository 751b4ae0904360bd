"""Fixtures that give the storage behaviour tests one store of each kind."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tradepulse_assets.core.io import S3Settings
from tradepulse_assets.storage.object_store import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
)
from tradepulse_assets_tests.support.s3 import S3Endpoint


def s3_store(endpoint: S3Endpoint, prefix: str = "") -> S3ObjectStore:
    """An S3 store on a fresh bucket, with the endpoint's credentials (so polars can read it too)."""
    settings = endpoint_settings(endpoint)
    return S3ObjectStore(endpoint.client(), endpoint.create_bucket(), prefix, settings=settings)


def endpoint_settings(endpoint: S3Endpoint) -> S3Settings:
    """The platform's S3 settings for the test endpoint (its URL, credentials and region)."""
    return S3Settings(
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """The same behaviour test runs against a local directory and a real S3 HTTP endpoint (moto)."""
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "store")
    else:
        yield s3_store(request.getfixturevalue("s3_endpoint"))
