"""A platform holding a clean, promoted XNYS session (revision 1) and a drop where revision 2 is hostile.

The clean production is built once per module (publish, land, stage, promote: about a second) and copied for
each test into the same directory, so every test starts from identical bytes and a module's Dagster
definitions (built from settings naming that directory) serve all of its tests.
"""

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets_tests.adversarial.cases import MARKET, SESSION

LANDED_AT = dt.datetime(2026, 3, 9, 20, 2, tzinfo=dt.UTC)


def settings_for(root: Path) -> Settings:
    return Settings.embedded(root / "home", vendor_source=root / "vendor",
                             clock="simulated:2026-03-10T00:00:00+00:00:1")


@dataclass
class Hostile:
    root: Path
    settings: Settings
    production_before: dict[str, bytes]

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def vendor(self) -> Path:
        return self.root / "vendor"

    @property
    def store(self) -> LocalObjectStore:
        return LocalObjectStore(self.home / "store")

    @property
    def folder(self) -> Path:
        return self.vendor / MARKET / SESSION.isoformat()

    def production(self) -> dict[str, bytes]:
        return {k: self.store.get_bytes(k) for k in self.store.list_keys("lake/production/")}

    def assert_production_unchanged(self) -> None:
        after = self.production()
        assert after.keys() == self.production_before.keys()
        assert all(after[k] == self.production_before[k] for k in after), "production bytes changed"


def _build_clean(root: Path) -> None:
    settings = settings_for(root)
    Publisher(drop_store(settings.vendor_source), seed=5).publish_session(MARKET, SESSION)
    market, store = load_registry().get(MARKET), LocalObjectStore(settings.object_store_url)
    audit = AuditLog(settings.home, clock=lambda: LANDED_AT)
    assert ingest.land_session(DirectoryConnector(settings.vendor_source), store, audit, market, SESSION,
                               LANDED_AT).ok
    assert ingest.stage_session(store, market, SESSION).promotable
    ingest.promote_session(store, market, SESSION, audit)


@pytest.fixture(scope="module")
def platform_root(tmp_path_factory) -> tuple[Path, Path]:
    """(the clean template, built once for the module; the directory every test of the module runs in)."""
    base = tmp_path_factory.mktemp("adversarial")
    _build_clean(base / "clean")
    return base / "clean", base / "platform"


@pytest.fixture
def hostile(platform_root, monkeypatch) -> Hostile:
    template, root = platform_root
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(template, root, symlinks=True)
    settings = settings_for(root)
    monkeypatch.setenv("TRADEPULSE_HOME", settings.home)
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", settings.object_store_url)
    monkeypatch.setenv("TRADEPULSE_STATE_DB_URL", settings.state_db_url)
    monkeypatch.setenv("TRADEPULSE_VENDOR_SOURCE", settings.vendor_source)
    platform = Hostile(root, settings, {})
    platform.production_before = platform.production()
    assert platform.production_before, "revision 1 is in production"
    return platform
