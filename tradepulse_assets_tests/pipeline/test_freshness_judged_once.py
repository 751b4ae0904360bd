"""Freshness means something (issue #15): a session's timeliness is judged once, at its first landing, by the
delivery path only. A late first delivery fails the (non-blocking) check once; every later landing of the
session (a re-run, a backfill, a restatement) passes and reports that the session was late, so a healthy
backfill ends with every check green."""

import datetime as dt

import pytest

from tradepulse_assets.defs.assets.bars import is_delivery_run
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore

UTC = dt.UTC
XNYS = load_registry().get("XNYS")
SESSION = dt.date(2026, 3, 9)
DEADLINE = ingest.session_deadline(XNYS, SESSION)  # 20:00 close + 300 s


@pytest.fixture
def drop(tmp_path):
    vendor = tmp_path / "vendor"
    Publisher(drop_store(str(vendor)), seed=7).publish_session("XNYS", SESSION)
    store = LocalObjectStore(tmp_path / "store")
    return DirectoryConnector(vendor), store, AuditLog(tmp_path / "home", clock=lambda: DEADLINE)


def freshness(store, is_backfill=False):
    staged = ingest.stage_session(store, XNYS, SESSION, is_backfill=is_backfill)
    return next(r for r in staged.results if r.gate == "freshness")


def land(drop, at):
    connector, store, audit = drop
    return ingest.land_session(connector, store, audit, XNYS, SESSION, at)


def test_a_late_first_delivery_fails_once_and_every_later_landing_passes_saying_it_was_late(drop):
    _, store, _ = drop
    land(drop, DEADLINE + dt.timedelta(minutes=10))
    first = freshness(store)
    assert not first.passed and not first.blocking and first.counts["seconds_late"] == 600
    assert first.counts["late_at_first_landing"] == 1

    land(drop, DEADLINE + dt.timedelta(days=3))  # the same session again, days later, by the delivery path
    again = freshness(store)
    assert again.passed, again.summary
    assert again.counts["late_at_first_landing"] == 1 and again.counts["seconds_late"] == 600  # the first verdict
    assert "late by 600 s at its first landing" in again.summary
    receipt = ingest.read_receipt(store, "XNYS", SESSION)
    assert receipt["first_landed_at"] == (DEADLINE + dt.timedelta(minutes=10)).isoformat()


def test_an_on_time_session_stays_on_time_when_re_landed(drop):
    _, store, _ = drop
    land(drop, DEADLINE - dt.timedelta(minutes=2))
    assert freshness(store).passed
    land(drop, DEADLINE + dt.timedelta(days=30))
    later = freshness(store)
    assert later.passed and later.counts["late_at_first_landing"] == 0
    assert "on time at its first landing" in later.summary


def test_a_backfill_of_a_never_landed_late_session_passes_and_reports_the_lateness(drop):
    _, store, _ = drop
    land(drop, DEADLINE + dt.timedelta(days=2))
    backfill = freshness(store, is_backfill=True)
    assert backfill.passed and backfill.counts["late_at_first_landing"] == 1
    assert backfill.counts["seconds_late"] == 2 * 86400


def test_only_the_publication_sensor_without_an_incident_is_the_delivery_path():
    assert is_delivery_run({"dagster/sensor_name": "xnys_publication_sensor"})
    assert not is_delivery_run({"dagster/sensor_name": "xnys_publication_sensor", "tradepulse/incident": "INC-1"})
    assert not is_delivery_run({"dagster/sensor_name": "xnys_lag_sensor", "tradepulse/incident": "INC-1"})
    assert not is_delivery_run({})  # launched by a person from the UI
    assert not is_delivery_run({"tradepulse/seed": "history"})
