"""A platform on temporary directories: settings, resources, an ephemeral Dagster instance, a vendor drop."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from tradepulse_assets.defs.definitions import build_definitions, build_resources
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario


@dataclass
class Platform:
    home: Path
    settings: Settings
    instance: dg.DagsterInstance

    @property
    def resources(self):
        return build_resources(self.settings)

    @property
    def definitions(self) -> dg.Definitions:
        return build_definitions(load_registry(), self.settings)

    def publish(self, market_id: str, session: dt.date, *faults: FaultSpec) -> None:
        scenario = Scenario("test", "test", tuple(faults))
        Publisher(drop_store(self.settings.vendor_source), seed=11, scenarios=(scenario,)).publish_session(
            market_id, session, by_minute=load_registry().get(market_id).is_streaming
        )


@pytest.fixture
def platform(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TRADEPULSE_HOME", str(home))
    settings = Settings.embedded(
        home, vendor_source=tmp_path / "vendor", clock="simulated:2026-03-10T00:00:00+00:00:1"
    )
    # The CLI reads the same settings from the environment.
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", settings.object_store_url)
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", settings.state_db_url)
    monkeypatch.setenv("TRADEPULSE_VENDOR_SOURCE", settings.vendor_source)
    with dg.instance_for_test() as instance:
        yield Platform(home, settings, instance)
