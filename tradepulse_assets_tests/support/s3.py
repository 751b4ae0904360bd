"""A real S3 HTTP endpoint on the loopback interface, for tests.

Why moto's threaded server and not ``mock_aws``: the code under test includes clients that do not go through
boto3 (polars reads Parquet with its own Rust ``object_store`` client), and only a real HTTP endpoint is seen
by both. The server binds port 0 so parallel sessions never race for a port, and it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

#: moto accepts any credentials; fixed values keep requests reproducible and obviously fake.
TEST_ACCESS_KEY_ID = "tradepulse-test"
TEST_SECRET_ACCESS_KEY = "tradepulse-test-secret"
TEST_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Endpoint:
    """Where a test S3 server listens, with the credentials and the bucket it created."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    bucket: str

    def client(self) -> Any:
        """A boto3 S3 client bound to this endpoint."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a fresh bucket (a unique name unless given) and return its name."""
        bucket = name or f"tp-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket


@contextlib.contextmanager
def moto_s3(bucket: str = "tradepulse-data") -> Iterator[S3Endpoint]:
    """Start moto's S3 server on 127.0.0.1 (free port), create ``bucket``, yield the endpoint, stop."""
    if len(bucket) < 3:
        raise ValueError(f"S3 bucket names need at least 3 characters, got {bucket!r}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = S3Endpoint(
            endpoint_url=f"http://{host}:{port}",
            access_key_id=TEST_ACCESS_KEY_ID,
            secret_access_key=TEST_SECRET_ACCESS_KEY,
            region=TEST_REGION,
            bucket=bucket,
        )
        endpoint.create_bucket(bucket)
        yield endpoint
    finally:
        server.stop()
