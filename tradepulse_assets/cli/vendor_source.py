"""Which connector reads a vendor source given on the command line or in ``TRADEPULSE_VENDOR_SOURCE``."""

import os

from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets.feeds.connectors import Connector, DirectoryConnector, HttpConnector, S3Connector


def connector_for(source: str, settings: Settings) -> Connector:
    """A directory, ``s3://bucket/prefix`` (endpoint from ``TRADEPULSE_S3_ENDPOINT_URL``) or ``http(s)://``
    (bearer token from ``TRADEPULSE_VENDOR_TOKEN``)."""
    if source.startswith(("http://", "https://")):
        return HttpConnector(source, token=os.environ.get("TRADEPULSE_VENDOR_TOKEN", ""))
    if source.startswith("s3://"):
        import boto3

        bucket, _, prefix = source[len("s3://"):].partition("/")
        return S3Connector(boto3.client("s3", endpoint_url=settings.s3_endpoint_url), bucket, prefix)
    return DirectoryConnector(source)
