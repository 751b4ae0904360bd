"""Fixtures of the incident-engine tests: a state DB on each backend, an engine writing artefacts to tmp."""

import datetime as dt

import pytest

from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.incidents.db_support import BACKENDS, db_target

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # a Monday session of XNYS, just after US DST


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path):
    with db_target(request.param, tmp_path) as t:
        yield t


@pytest.fixture
def db(target):
    database = StateDB(target.url)
    yield database
    database.close()


@pytest.fixture
def home(tmp_path):
    return LocalObjectStore(tmp_path / "home")


@pytest.fixture
def engine(db, home):
    return IncidentEngine(db, home, markets=["XNYS", "XLON", "XHKG", "CRYPTO"])
