"""A platform holding a clean, promoted XNYS session (revision 1) and a drop where revision 2 is hostile."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from tradepulse_assets.defs.definitions import build_resources
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets_tests.adversarial.cases import MARKET, SESSION

LANDED_AT = dt.datetime(2026, 3, 9, 20, 2, tzinfo=dt.UTC)


@dataclass
class Hostile:
    home: Path
    vendor: Path
    settings: Settings
    store: LocalObjectStore
    production_before: dict[str, bytes]

    @property
    def folder(self) -> Path:
        return self.vendor / MARKET / SESSION.isoformat()

    def production(self) -> dict[str, bytes]:
        return {k: self.store.get_bytes(k) for k in self.store.list_keys("lake/production/")}

    def assert_production_unchanged(self) -> None:
        after = self.production()
        assert after.keys() == self.production_before.keys()
        assert all(after[k] == self.production_before[k] for k in after), "production bytes changed"


@pytest.fixture
def hostile(tmp_path, monkeypatch) -> Hostile:
    home, vendor = tmp_path / "home", tmp_path / "vendor"
    settings = Settings(
        home=str(home),
        object_store_url=str(home / "store"),
        s3_endpoint_url=None,
        state_db_url=f"sqlite:///{home / 'state.db'}",
        vendor_source=str(vendor),
        clock="simulated:2026-03-10T00:00:00+00:00:1",
        executor="in_process",
    )
    monkeypatch.setenv("TRADEPULSE_HOME", str(home))
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", settings.object_store_url)
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", settings.state_db_url)
    monkeypatch.setenv("TRADEPULSE_VENDOR_SOURCE", settings.vendor_source)
    Publisher(drop_store(str(vendor)), seed=5).publish_session(MARKET, SESSION)
    market, store = load_registry().get(MARKET), LocalObjectStore(home / "store")
    audit = AuditLog(home, clock=lambda: LANDED_AT)
    assert ingest.land_session(DirectoryConnector(vendor), store, audit, market, SESSION, LANDED_AT).ok
    assert ingest.stage_session(store, market, SESSION).promotable
    ingest.promote_session(store, market, SESSION, audit)
    platform = Hostile(home, vendor, settings, store, {})
    platform.production_before = platform.production()
    assert platform.production_before, "revision 1 is in production"
    return platform


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def resources(platform: Hostile) -> dict:
    return build_resources(platform.settings)
