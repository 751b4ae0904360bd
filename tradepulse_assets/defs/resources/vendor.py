"""The vendor drops markets ingest from: a directory, an S3 bucket or an HTTP API, in each market's format.

Wiring only: which connector reads which market is ``tradepulse_assets.feeds.sources.connector_for`` (the one
dispatch the CLI uses too).
"""

import dagster as dg

from tradepulse_assets.feeds.connectors import Connector
from tradepulse_assets.feeds.sources import connector_for


class VendorResource(dg.ConfigurableResource):
    """``source`` is a directory, ``s3://bucket/prefix`` or ``http(s)://host:port`` (bearer ``token``)."""

    source: str
    token: str | None = None
    s3_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    timeout_seconds: float = 10.0

    def connector(self) -> Connector:
        return connector_for(
            self.source,
            token=self.token,
            s3_endpoint_url=self.s3_endpoint_url,
            aws_region=self.aws_region,
            timeout=self.timeout_seconds,
        )
