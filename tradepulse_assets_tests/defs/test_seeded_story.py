"""``make run``'s seeded story, as the README tells it: the corrupt XLON delivery found the next morning.

The platform starts long after the session's SLA (so the lag sensor ticks first and opens a lag incident);
the landing finds the corruption and the incident is renamed ``checksum_mismatch`` (one fault, one incident).
Left alone for 30 simulated minutes of sensor ticks: one failed run, one quarantined batch, nothing retried.
Time to detect is measured from the fault's first evidence (seconds), not from the session's open (hours).
"""

import dataclasses
import datetime as dt

import pytest

from tradepulse_assets.cli.seed import SEED, SEEDED_FAULT_MARKET
from tradepulse_assets.drills.replay import Replay
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets.incidents.reports import incident_durations
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import MarketRegistry, calendar_for, load_registry
from tradepulse_assets.storage.state import StateDB

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
XLON = load_registry().get(SEEDED_FAULT_MARKET)
SESSION = dt.date(2026, 3, 10)
MORNING = dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.timezone.utc)  # make run started before the next open
TICK = dt.timedelta(seconds=30)


def test_seeded_corrupt_delivery_opens_checksum_mismatch_and_stays_quiet(platform):
    settings = dataclasses.replace(platform.settings, lag_lookback_sessions=1)
    spec = FaultSpec("checksum_corruption", "XLON", SESSION, SESSION, {"bytes": 8})
    Publisher(drop_store(settings.vendor_source), seed=SEED,
              scenarios=(Scenario("seeded", "", (spec,)),)).publish_session("XLON", SESSION)
    replay = Replay(settings, platform.instance, MarketRegistry("seed", (XLON,)), MORNING)
    incidents = IncidentStore(StateDB(settings.state_db_url))
    # The daemon starts every sensor at once; a run-failure sensor only sees failures after its first tick.
    replay.tick("quality_failure_sensor")
    for _ in range(60):  # 30 minutes of sensor ticks
        replay.step()
        replay.advance(TICK)
    (incident,) = incidents.list()
    assert incident.cause == "checksum_mismatch"
    assert [e.kind for e in incidents.events(incident.id)].count("reclassified") == 1  # the lag sensor was first
    assert len(incidents.quarantined_batches(incident.id)) == 1
    ingest_runs = [r for r in replay.runs if r.job == "xlon_ingest"]
    assert [r.success for r in ingest_runs] == [False]  # one landing, no retry of unchanged bytes
    assert [r.job for r in replay.runs if r.job != "xlon_ingest"] == ["quarantine_batch"]
    durations = incident_durations(incident, incidents.gap_windows(incident.id), incidents.events(incident.id))
    close = calendar_for("XLON", "XLON").hours(SESSION).close
    assert MORNING - close > dt.timedelta(hours=14)
    assert 0 <= durations["time_to_detect"] <= TICK.total_seconds()
