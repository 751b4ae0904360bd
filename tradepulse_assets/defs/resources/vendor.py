"""The vendor drop a market ingests from: a directory, an S3 bucket (dagster-aws) or an HTTP API."""

import dagster as dg
from dagster_aws.s3 import S3Resource

from tradepulse_assets.feeds.connectors import Connector, DirectoryConnector, HttpConnector, S3Connector


class VendorResource(dg.ConfigurableResource):
    """``source`` is a directory, ``s3://bucket/prefix`` or ``http(s)://host:port`` (bearer ``token``)."""

    source: str
    token: str | None = None
    s3_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    timeout_seconds: float = 10.0

    def connector(self) -> Connector:
        if self.source.startswith("s3://"):
            bucket, _, prefix = self.source[len("s3://"):].partition("/")
            client = S3Resource(endpoint_url=self.s3_endpoint_url, region_name=self.aws_region).get_client()
            return S3Connector(client, bucket, prefix)
        if self.source.startswith(("http://", "https://")):
            return HttpConnector(self.source, token=self.token or "", timeout=self.timeout_seconds)
        return DirectoryConnector(self.source)
