"""Configuration read once (``pipeline/settings.py``) and handed to resources as ``EnvVar``s (issue #15): the
resource config Dagster shows in the UI names variables and never holds a PostgreSQL password or a token."""

import json

import dagster as dg
import pytest

from tradepulse_assets.defs.definitions import build_resources
from tradepulse_assets.pipeline.settings import ENVIRONMENT_VARIABLES, Settings, load_settings

SECRET_URL = "postgresql+psycopg2://tradepulse:s3cret-pw@db.internal:5432/tradepulse"
TOKEN = "tok-0123456789"


def shown_in_the_ui(resource: dg.ConfigurableResource) -> dict:
    """What the UI's resource page lists as configured values: the definition's config default, as JSON."""
    return json.loads(resource.get_resource_definition().config_schema.default_value_as_json_str)


@pytest.fixture
def production_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path))
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", SECRET_URL)
    monkeypatch.setenv("TRADEPULSE_VENDOR_SOURCE", "https://vendor.example/api")
    monkeypatch.setenv("TRADEPULSE_VENDOR_TOKEN", TOKEN)
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", "s3://tradepulse-data")
    monkeypatch.setenv("TRADEPULSE_CLOCK", "system")


def test_settings_from_the_environment_reach_resources_as_env_vars(production_environment):
    settings = load_settings()
    assert settings.state_db_url == SECRET_URL and settings.vendor_token == TOKEN
    assert TOKEN not in repr(settings)  # the token is not even in the settings' repr
    resources = build_resources(settings)
    shown = {name: shown_in_the_ui(resource) for name, resource in resources.items()}
    rendered = json.dumps(shown)
    assert "s3cret" not in rendered and TOKEN not in rendered
    assert shown["state"]["url"] == {"env": "TRADEPULSE_STATE_DB_URL"}
    assert shown["vendor"]["token"] == {"env": "TRADEPULSE_VENDOR_TOKEN"}
    assert shown["object_store"]["url"] == {"env": "TRADEPULSE_OBJECT_STORE_URL"}


def test_env_vars_resolve_to_the_values_at_run_time(production_environment):
    resources = build_resources(load_settings())

    @dg.asset
    def probe(state: dg.ConfigurableResource, vendor: dg.ConfigurableResource) -> None:
        assert state.url == SECRET_URL and vendor.token == TOKEN

    result = dg.materialize([probe], resources={"state": resources["state"], "vendor": resources["vendor"]})
    assert result.success


def test_defaults_and_explicit_settings_stay_plain_values(tmp_path, monkeypatch):
    for variable in ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path))
    defaults = load_settings()
    assert defaults.from_environment == frozenset()
    assert shown_in_the_ui(build_resources(defaults)["state"])["url"].startswith("sqlite:///")
    explicit = Settings(home=str(tmp_path), object_store_url=str(tmp_path / "store"), s3_endpoint_url=None,
                        state_db_url=f"sqlite:///{tmp_path}/s.db", vendor_source=str(tmp_path / "v"),
                        clock="system", executor="in_process")
    assert shown_in_the_ui(build_resources(explicit)["vendor"])["source"] == str(tmp_path / "v")


def test_a_mapping_that_differs_from_the_process_environment_is_not_turned_into_env_vars(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path))
    monkeypatch.delenv("TRADEPULSE_STATE_DB_URL", raising=False)
    settings = load_settings({"TRADEPULSE_STATE_DB_URL": f"sqlite:///{tmp_path}/other.db"})
    assert "state_db_url" not in settings.from_environment
    assert shown_in_the_ui(build_resources(settings)["state"])["url"] == f"sqlite:///{tmp_path}/other.db"
