"""The object store (lake, landing, quarantine): a local directory or an S3 bucket via dagster-aws."""

import dagster as dg

from tradepulse_assets.storage.object_store import ObjectStore, S3Credentials, object_store_from_url


class ObjectStoreResource(dg.ConfigurableResource):
    """``url`` is a directory path, ``file:///...`` or ``s3://bucket/prefix`` (any S3 endpoint).

    Credentials for S3 come from the AWS default chain (``AWS_ACCESS_KEY_ID``..., a profile or a role).
    """

    url: str
    s3_endpoint_url: str | None = None
    aws_region: str = "us-east-1"

    def store(self) -> ObjectStore:
        if not self.url.startswith("s3://"):
            return object_store_from_url(self.url)
        from dagster_aws.s3 import S3Resource  # lazily: it imports Dagster's test utilities (seconds)

        client = S3Resource(endpoint_url=self.s3_endpoint_url, region_name=self.aws_region).get_client()
        return object_store_from_url(self.url, client=client, credentials=S3Credentials(region=self.aws_region))
