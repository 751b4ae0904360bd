"""The production profile on real services: a fresh PostgreSQL database, moto's S3 endpoint, the deploy instance.

Why a database and not a schema: dagster-postgres creates its tables in the connection's default schema and
offers no schema option, so isolation per test run needs its own database (created here with psycopg2 and
dropped with ``WITH (FORCE)`` afterwards, which also ends connections pooled by step subprocesses). The
platform's state DB lives in the same database under its own schema, as it would in production.

The Dagster instance is loaded from ``deploy/dagster.yaml`` itself, so the test also proves that file loads.
Everything is configured through environment variables (``monkeypatch``): step subprocesses of the multiprocess
executor inherit them, which is exactly how the production profile reaches run workers.
"""

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest

from tradepulse_assets_tests.incidents.db_support import pg_base_url
from tradepulse_assets_tests.support.s3 import S3Endpoint

DEPLOY_INSTANCE_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
STATE_SCHEMA = "tradepulse_state"


@dataclass(frozen=True)
class ProductionProfile:
    """Where everything of one test run lives."""

    home: Path
    pg_url: str  # the fresh database
    state_db_url: str
    s3: S3Endpoint
    data_bucket: str
    vendor_bucket: str
    object_store_url: str
    vendor_source: str


def _with_database(base_url: str, database: str) -> str:
    parsed = urlparse(base_url)
    return parsed._replace(path=f"/{database}").geturl()


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test; dropped (connections forced closed) afterwards."""
    import psycopg2

    base = pg_base_url()
    name = f"tp_prod_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(base, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def production_profile(tmp_path, monkeypatch, fresh_pg_database, s3_endpoint) -> ProductionProfile:
    """Export the production profile's environment: S3 store and vendor, PostgreSQL state, multiprocess."""
    pg = urlparse(fresh_pg_database)
    data_bucket, vendor_bucket = (
        s3_endpoint.create_bucket(),
        s3_endpoint.create_bucket(),
    )
    sep = "&" if "?" in fresh_pg_database else "?"
    profile = ProductionProfile(
        home=tmp_path / "home",
        pg_url=fresh_pg_database,
        state_db_url=f"{fresh_pg_database}{sep}schema={STATE_SCHEMA}",
        s3=s3_endpoint,
        data_bucket=data_bucket,
        vendor_bucket=vendor_bucket,
        object_store_url=f"s3://{data_bucket}/tradepulse",
        vendor_source=f"s3://{vendor_bucket}/vendor",
    )
    env = {
        "TRADEPULSE_HOME": str(profile.home),
        "TRADEPULSE_OBJECT_STORE_URL": profile.object_store_url,
        "TRADEPULSE_S3_ENDPOINT_URL": s3_endpoint.endpoint_url,
        "TRADEPULSE_STATE_DB_URL": profile.state_db_url,
        "TRADEPULSE_VENDOR_SOURCE": profile.vendor_source,
        "TRADEPULSE_EXECUTOR": "multiprocess",
        "AWS_ACCESS_KEY_ID": s3_endpoint.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3_endpoint.secret_access_key,
        "AWS_DEFAULT_REGION": s3_endpoint.region,
        # deploy/dagster.yaml keeps step logs in the bucket; boto3 reads its endpoint from this variable.
        "DAGSTER_COMPUTE_LOGS_BUCKET": data_bucket,
        "AWS_ENDPOINT_URL_S3": s3_endpoint.endpoint_url,
        "DAGSTER_PG_HOST": pg.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(pg.port or 5432),
        "DAGSTER_PG_DB": pg.path.lstrip("/"),
        "DAGSTER_PG_USERNAME": pg.username or "postgres",
        "DAGSTER_PG_PASSWORD": pg.password or "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "TRADEPULSE_VENDOR_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return profile


@pytest.fixture
def production_instance(tmp_path, monkeypatch, production_profile) -> Iterator[dg.DagsterInstance]:
    """A persistent Dagster instance from ``deploy/dagster.yaml`` on the fresh database."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(DEPLOY_INSTANCE_YAML, dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()
