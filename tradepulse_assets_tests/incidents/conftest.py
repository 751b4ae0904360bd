"""Fixtures of the incident-engine tests: an engine writing artefacts to tmp (``db`` and ``target`` come from the
shared conftest: a state DB on each backend)."""

import datetime as dt

import pytest

from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.storage.object_store import LocalObjectStore

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # a Monday session of XNYS, just after US DST


@pytest.fixture
def home(tmp_path):
    return LocalObjectStore(tmp_path / "home")


@pytest.fixture
def engine(db, home):
    return IncidentEngine(db, home, markets=["XNYS", "XLON", "XHKG", "CRYPTO"])
