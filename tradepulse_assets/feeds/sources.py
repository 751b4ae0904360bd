"""The one place that decides which connector reads a market: location (directory, S3, HTTP) x format.

Why one dispatch: the Dagster resource and the CLI each had their own copy (the CLI's without a timeout),
and a vendor format is one more axis of the same choice. The platform has one vendor source
(``TRADEPULSE_VENDOR_SOURCE``: a directory, ``s3://bucket/prefix`` or ``http(s)://``); each market's vendor in
the registry says what it delivers:

- the built-in vendors (``simulator``, ``user``) deliver our drop format under
  ``<source>/<market>/<session>/``;
- a ``[vendors.<name>]`` table with ``format = "databento" | "flat_minute_aggs" | "mapped"`` reads that
  market's files under ``<source>/<market>/``, or under the table's own ``source`` (``{market}`` is
  replaced), with the bearer token from the environment variable its ``token_env`` names.

``validate_vendors`` checks every vendor table's options; the code location calls it at start-up.
"""

import datetime as dt
import os

from tradepulse_assets.core.environment import read, read_named
from tradepulse_assets.core.io import S3Settings
from tradepulse_assets.core.io import s3_client as build_s3_client
from tradepulse_assets.feeds.blobs import blobs_from_url
from tradepulse_assets.feeds.connectors import (
    TOKEN_ENV,
    Connector,
    DirectoryConnector,
    HttpConnector,
    S3Connector,
    file_parser,
)
from tradepulse_assets.feeds.databento import DatabentoLayout
from tradepulse_assets.feeds.flatfiles import check_options as flat_options
from tradepulse_assets.feeds.flatfiles import decode_minute_aggs
from tradepulse_assets.feeds.formats import FormatConnector, Layout, PatternLayout
from tradepulse_assets.feeds.mapping import decode_mapped, parse_mapping
from tradepulse_assets.markets import MarketRegistry, load_registry
from tradepulse_assets.markets.registry import RegistryError, VendorSpec

CONNECTION_OPTIONS = ("token_env",)  # options of any vendor table, not of its format


def format_options(spec: VendorSpec) -> dict:
    """The options of the vendor's format (without those about the connection)."""
    return {k: v for k, v in spec.options.items() if k not in CONNECTION_OPTIONS}


def layout_for(spec: VendorSpec) -> Layout:
    """The format's layout, its options validated (``RegistryError`` naming the table and the field)."""
    where = f"[vendors.{spec.name}]"
    options = format_options(spec)
    try:
        if spec.format == "databento":
            unknown = sorted(set(options) - {"dataset"})
            if unknown:
                raise ValueError(f"{where}: unknown option(s) {', '.join(unknown)} for databento (dataset)")
            return DatabentoLayout(options.get("dataset"))
        if spec.format == "flat_minute_aggs":
            checked = flat_options(options, where)
            return PatternLayout(
                checked["path"],
                lambda name, data, market, window: decode_minute_aggs(
                    name, data, market, window, checked["universe"]
                ),
            )
        if spec.format == "mapped":
            mapping = parse_mapping(options, where)
            return PatternLayout(
                mapping.file, lambda name, data, market, window: decode_mapped(mapping, name, data, market)
            )
    except ValueError as exc:
        raise RegistryError(str(exc)) from None
    raise RegistryError(f"{where}: format {spec.format!r} has no connector")


def validate_vendors(registry: MarketRegistry) -> None:
    """Start-up check of every vendor table the registry declares."""
    for spec in registry.vendors:
        token_env = spec.options.get("token_env")
        if token_env is not None and not (isinstance(token_env, str) and token_env.isidentifier()):
            raise RegistryError(
                f"{registry.source}: [vendors.{spec.name}] token_env {token_env!r} is not a variable name"
            )
        try:
            layout_for(spec)
        except RegistryError as exc:
            raise RegistryError(f"{registry.source}: {exc}") from None


def _join(url: str, part: str) -> str:
    return (
        f"{url.rstrip('/')}/{part}"
        if url.startswith(("s3://", "http://", "https://"))
        else os.path.join(url, part)
    )


class RoutingConnector:
    """Each market to its own connector (drop format or a vendor format); the ``Connector`` protocol."""

    def __init__(self, default: Connector, by_market: dict[str, Connector], default_used: bool = True):
        self.default, self.by_market, self.default_used = default, by_market, default_used

    def __repr__(self) -> str:
        return f"RoutingConnector({self.default!r}, {self.by_market!r})"

    def connector(self, market: str) -> Connector:
        return self.by_market.get(market, self.default)

    def list_sessions(self, market: str) -> list[dt.date]:
        return self.connector(market).list_sessions(market)

    def read_manifest(self, market: str, session: dt.date):
        return self.connector(market).read_manifest(market, session)

    def read_file(self, market: str, session: dt.date, name: str) -> bytes:
        return self.connector(market).read_file(market, session, name)

    def parser(self, market: str, session: dt.date):
        return file_parser(self.connector(market), market, session)

    def check_connectivity(self) -> None:
        for connector in self.by_market.values():
            connector.check_connectivity()
        if self.default_used:  # some market reads our drop format at the platform's source
            self.default.check_connectivity()


def drop_connector(source: str, token: str, timeout: float, s3_client) -> Connector:
    """Our drop format at ``source``: a directory, ``s3://bucket/prefix`` or the ``vendor serve`` API."""
    if source.startswith("s3://"):
        bucket, _, prefix = source[len("s3://") :].partition("/")
        return S3Connector(s3_client(), bucket, prefix)
    if source.startswith(("http://", "https://")):
        return HttpConnector(source, token=token, timeout=timeout)
    return DirectoryConnector(source)


def connector_for(
    source: str,
    *,
    token: str | None = None,
    s3_endpoint_url: str | None = None,
    aws_region: str | None = None,
    timeout: float = 10.0,
    registry: MarketRegistry | None = None,
    environ: dict | None = None,
) -> Connector:
    """The connector for the platform's vendor source, per market as the registry declares (see module doc).

    ``token`` defaults to ``$TRADEPULSE_VENDOR_TOKEN``; S3 goes to ``s3_endpoint_url`` (None: AWS).
    """
    token = (read(TOKEN_ENV, environ) or "") if token is None else token
    registry = registry or load_registry()

    def s3_client():
        region = aws_region or read("AWS_REGION", environ)
        return build_s3_client(S3Settings(endpoint_url=s3_endpoint_url, region_name=region))

    default = drop_connector(source, token, timeout, s3_client)
    by_market: dict[str, Connector] = {}
    for market in registry:
        spec = registry.vendor_of(market.market_id)
        if spec.is_drop_format:
            continue
        base = (
            spec.source.replace("{market}", market.market_id)
            if spec.source
            else _join(source, market.market_id)
        )
        own_token = spec.options.get("token_env")  # a vendor may name its own token variable
        vendor_token = read_named(own_token, environ) if own_token else token
        blobs = blobs_from_url(base, token=vendor_token, timeout=timeout, s3_client_factory=s3_client)
        by_market[market.market_id] = FormatConnector(market, spec.name, blobs, layout_for(spec))
    if not by_market:
        return default
    return RoutingConnector(default, by_market, default_used=len(by_market) < len(registry))
