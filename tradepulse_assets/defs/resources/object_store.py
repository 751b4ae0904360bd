"""The object store (lake, landing, quarantine): a local directory or an S3 bucket via dagster-aws."""

import dagster as dg

from tradepulse_assets.core.io import S3Settings
from tradepulse_assets.storage.object_store import ObjectStore, object_store_from_url


class ObjectStoreResource(dg.ConfigurableResource):
    """``url`` is a directory path, ``file:///...`` or ``s3://bucket/prefix`` (any S3 endpoint).

    Credentials for S3 come from the AWS default chain (``AWS_ACCESS_KEY_ID``..., a profile or a role).
    """

    url: str
    s3_endpoint_url: str | None = None
    aws_region: str = "us-east-1"

    def store(self) -> ObjectStore:
        return object_store_from_url(
            self.url, s3=S3Settings(endpoint_url=self.s3_endpoint_url, region_name=self.aws_region)
        )
