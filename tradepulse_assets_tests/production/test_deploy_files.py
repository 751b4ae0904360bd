"""The deploy/ examples agree with each other and with the code (no services needed).

The Docker and Helm examples cannot run here (no Docker engine, no cluster), so what can drift silently is
checked statically: both instance files pass Dagster's instance schema, the Docker one differs from the
tested ``deploy/dagster.yaml`` only by its launcher, the Helm queue has the same limits, and every run of an
ingestion job carries the tag the per-market limit keys on.
"""

from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from tradepulse_assets.defs.assets.bars import MARKET_TAG
from tradepulse_assets.defs.jobs import build_ingest_job
from tradepulse_assets.markets import load_registry

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTANCE_ENV = (
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_DB",
    "DAGSTER_PG_USERNAME",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_COMPUTE_LOGS_BUCKET",
)


@pytest.fixture
def pg_env(monkeypatch):
    for name, value in zip(INSTANCE_ENV, ("db.internal", "5432", "dagster", "tradepulse", "secret", "logs")):
        monkeypatch.setenv(name, value)


def instance_config(directory: Path) -> dict:
    config, _ = dagster_instance_config(str(directory))
    return config


def test_instance_files_pass_dagster_schema_and_differ_only_by_launcher(pg_env):
    base, docker = instance_config(DEPLOY), instance_config(DEPLOY / "docker")
    assert base["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert "run_launcher" not in base
    assert docker.pop("run_launcher")["class"] == "DockerRunLauncher"
    assert docker["run_monitoring"].pop("max_resume_run_attempts") >= 1
    assert base["run_monitoring"].pop("max_resume_run_attempts") == 0  # the default launcher cannot resume
    assert docker == base


def test_per_market_limit_matches_the_tag_every_ingest_run_carries(pg_env):
    limits = instance_config(DEPLOY)["run_coordinator"]["config"]["tag_concurrency_limits"]
    per_market = [entry for entry in limits if entry["key"] == MARKET_TAG]
    assert per_market == [{"key": MARKET_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    for market in load_registry():
        assert build_ingest_job(market).tags[MARKET_TAG] == market.market_id


def test_helm_values_queue_like_the_instance_file(pg_env):
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    base = instance_config(DEPLOY)["run_coordinator"]["config"]
    assert queue["maxConcurrentRuns"] == base["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == base["tag_concurrency_limits"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == [
        "--module-name",
        "tradepulse_assets.location",
    ]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["TRADEPULSE_EXECUTOR"] == "multiprocess"
    assert env["TRADEPULSE_OBJECT_STORE_URL"].startswith("s3://")
