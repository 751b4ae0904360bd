"""Real vendor formats through the real Dagster assets, on an ephemeral instance.

The same simulated session is delivered in our drop format and in a vendor's (DBN written by databento-dbn,
minute-aggregate flat files, a TOML-mapped CSV); both land, pass every gate and must give identical
production bars. Vendor faults open the incident our own format opens for the same damage.
"""

import contextlib
import dataclasses
import datetime as dt
import os
import shutil
from importlib import resources
from pathlib import Path

import dagster as dg
import pytest

from tradepulse_assets.defs.assets.bars import build_bar_assets
from tradepulse_assets.defs.definitions import build_resources
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets.feeds.vendor_publish import publish_vendor
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import load_registry
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.support.file_server import serve_files
from tradepulse_assets_tests.support.s3 import moto_s3

SESSION = dt.date(2026, 3, 9)
SEED = 11  # the platform fixture publishes our drop format with this seed
VENDOR_TABLES = {
    "databento": (
        '[vendors.databento-xnas]\nformat = "databento"\ndataset = "XNAS.ITCH"\n'
        'source = "{root}/{{market}}"\n'
    ),
    "flat": '[vendors.flat]\nformat = "flat_minute_aggs"\nsource = "{root}/{{market}}"\n',
    "mapped": (
        '[vendors.acme]\nformat = "mapped"\nsource = "{root}/{{market}}"\n'
        'file = "{{session:%Y%m%d}}_bars.csv.gz"\n'
        'time_zone = "America/New_York"\nbar_label = "end"\nprice_scale = 0.0001\n'
        '[vendors.acme.columns]\nsymbol = "RIC"\nts = "Time"\nopen = "Open"\nhigh = "High"\nlow = "Low"\n'
        'close = "Last"\nvolume = "Volume"\ntrade_count = "Trades"\n'
    ),
}
VENDOR_NAMES = {"databento": "databento-xnas", "flat": "flat", "mapped": "acme"}
VENDOR_COLUMNS = {
    "databento": [
        "symbol",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ],  # OHLCV-1m: no trade count, no vwap
    "flat": ["symbol", "ts", "open", "high", "low", "close", "volume", "trade_count"],
    "mapped": ["symbol", "ts", "open", "high", "low", "close", "volume", "trade_count"],
}


def use_vendor(monkeypatch, tmp_path: Path, kind: str) -> Path:
    """Point XNYS at vendor ``kind`` (files under the returned root) through a registry file, as a firm
    would."""
    root = tmp_path / f"vendor-{kind}"
    packaged = resources.files("tradepulse_assets.config").joinpath("markets.toml").read_text()
    head, _, tail = packaged.partition("[markets.XNYS]")
    tail = tail.replace('vendor = "simulator"', f'vendor = "{VENDOR_NAMES[kind]}"', 1)
    path = tmp_path / "markets.toml"
    path.write_text(head + "[markets.XNYS]" + tail + "\n" + VENDOR_TABLES[kind].format(root=root))
    monkeypatch.setenv("TRADEPULSE_MARKETS_FILE", str(path))
    return root


def publish_as_vendor(root: Path, kind: str, *faults: FaultSpec) -> None:
    registry = load_registry()
    publisher = Publisher(drop_store(root), seed=SEED, scenarios=(Scenario("t", "", tuple(faults)),))
    publish_vendor(publisher, publisher.dest, registry.vendor_of("XNYS"), "XNYS", [SESSION])


def materialize(platform):
    return dg.materialize(
        build_bar_assets(load_registry().get("XNYS")),
        partition_key=SESSION.isoformat(),
        resources=platform.resources,
        instance=platform.instance,
        raise_on_error=False,
    )


def checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def production(platform):
    return lake.read_frame(LocalObjectStore(platform.home / "store"), "production", "XNYS", SESSION)


@pytest.mark.parametrize("kind", ["databento", "flat", "mapped"])
def test_a_vendor_session_passes_every_gate_and_matches_our_format(platform, monkeypatch, tmp_path, kind):
    platform.publish("XNYS", SESSION)
    ours_result = materialize(platform)
    assert ours_result.success
    ours = production(platform)

    root = use_vendor(monkeypatch, tmp_path, kind)
    publish_as_vendor(root, kind)
    result = materialize(platform)
    assert result.success
    outcome = checks(result)
    assert outcome.pop("landing_verification") is True
    assert {name for name, passed in outcome.items() if not passed} <= {"freshness"}  # the simulated clock
    assert outcome == {k: v for k, v in checks(ours_result).items() if k != "landing_verification"}
    theirs = production(platform)
    assert theirs.columns == VENDOR_COLUMNS[kind]
    assert theirs.equals(ours.select(theirs.columns)), f"{kind} production bars differ from our format's"
    landed = LocalObjectStore(platform.home / "store").list_keys("landing/raw/market=XNYS/session=2026-03-09")
    if kind == "databento":  # the vendor's original bytes are what landing keeps
        assert any(k.endswith("xnas-itch-20260309.ohlcv-1m.dbn.zst") for k in landed)


@pytest.mark.slow  # the feeds tests cover both transports quickly; this is the same through Dagster
@pytest.mark.parametrize("transport", ["s3", "http"])
def test_a_databento_job_lands_from_s3_and_https_through_the_one_dispatch(
    platform, monkeypatch, tmp_path, transport
):
    platform.publish("XNYS", SESSION)
    assert materialize(platform).success
    ours = production(platform)
    local = use_vendor(monkeypatch, tmp_path, "databento")
    publish_as_vendor(local, "databento")
    (job,) = (local / "XNYS").iterdir()
    registry_file = Path(os.environ["TRADEPULSE_MARKETS_FILE"])
    with contextlib.ExitStack() as stack:
        if transport == "s3":
            s3 = stack.enter_context(moto_s3("databento-jobs"))
            for path in job.iterdir():
                s3.client().put_object(
                    Bucket=s3.bucket, Key=f"jobs/XNYS/{job.name}/{path.name}", Body=path.read_bytes()
                )
            source = f"s3://{s3.bucket}/jobs/{{market}}"
            for key, value in (
                ("AWS_ACCESS_KEY_ID", s3.access_key_id),
                ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key),
            ):
                monkeypatch.setenv(key, value)
            settings = dataclasses.replace(platform.settings, s3_endpoint_url=s3.endpoint_url)
        else:  # one job folder served over HTTP with a bearer token named by token_env
            url = stack.enter_context(serve_files(job.parent, "db-files-token"))
            source = f"{url}/{job.name}"
            monkeypatch.setenv("DATABENTO_FILES_TOKEN", "db-files-token")
            settings = platform.settings
        text = registry_file.read_text().replace(f'source = "{local}/{{market}}"', f'source = "{source}"')
        assert f'source = "{source}"' in text  # the market now reads from S3 / HTTP only
        if transport == "s3":
            shutil.rmtree(local / "XNYS")  # nothing left on disk to fall back to
        registry_file.write_text(
            text + ('token_env = "DATABENTO_FILES_TOKEN"\n' if transport == "http" else "")
        )
        result = dg.materialize(
            build_bar_assets(load_registry().get("XNYS")),
            partition_key=SESSION.isoformat(),
            resources=build_resources(settings),
            instance=platform.instance,
            raise_on_error=False,
        )
    assert result.success, transport
    assert checks(result)["landing_verification"] is True
    theirs = production(platform)
    assert theirs.equals(ours.select(theirs.columns))


# --- faults open the incident our format opens ----------------------------------------------------------


def tick(defs: dg.Definitions, instance, resources, cursor=None):
    """One evaluation of the quality-failure sensor, as the daemon would run it."""
    from dagster._core.definitions.partitions.context import partition_loading_context

    sensor = defs.resolve_sensor_def("quality_failure_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
    with partition_loading_context(dynamic_partitions_store=instance):
        data = sensor.evaluate_tick(context)
    return list(data.run_requests or []), data.cursor


def incident_after_ingest(platform, market: str = "XNYS") -> tuple[dict[str, bool], object]:
    """Run a market's ingest job for the session; the failure sensor's verdict: (check outcomes, incident)."""
    defs = platform.definitions
    _, cursor = tick(defs, platform.instance, platform.resources)  # the first tick only sets the cursor
    result = defs.resolve_job_def(f"{market.lower()}_ingest").execute_in_process(
        partition_key=SESSION.isoformat(), instance=platform.instance, raise_on_error=False
    )
    requests, _ = tick(defs, platform.instance, platform.resources, cursor)
    incidents = IncidentStore(StateDB(platform.settings.state_db_url))
    incident = incidents.get(requests[0].tags["tradepulse/incident"]) if requests else None
    return checks(result), incident


@pytest.mark.slow  # two ingest runs and two sensor ticks per case
@pytest.mark.parametrize(
    "kind, fault",
    [
        (
            "databento",
            FaultSpec("truncated_file", "XNYS", SESSION, SESSION, {"keep_fraction": 0.6}),
        ),  # corrupt DBN
        (
            "databento",
            FaultSpec("checksum_corruption", "XNYS", SESSION, SESSION, {"bytes": 8}),
        ),  # hash mismatch
        ("flat", FaultSpec("truncated_file", "XNYS", SESSION, SESSION, {"keep_fraction": 0.6})),
    ],
)
def test_a_corrupt_vendor_file_opens_the_incident_our_format_opens(
    platform, monkeypatch, tmp_path, kind, fault
):
    # Our format on another market (one market's open incident of a cause would absorb the second fault).
    platform.publish("XLON", SESSION, FaultSpec(fault.kind, "XLON", SESSION, SESSION, fault.params))
    our_checks, our_incident = incident_after_ingest(platform, "XLON")
    assert our_checks["landing_verification"] is False and our_incident is not None

    root = use_vendor(monkeypatch, tmp_path, kind)
    publish_as_vendor(root, kind, fault)
    their_checks, incident = incident_after_ingest(platform)
    assert their_checks == {"landing_verification": False}
    assert incident is not None and incident.market == "XNYS" and our_incident.market == "XLON"
    if kind == "databento":  # the job manifest carries hashes: a damaged file is a checksum mismatch, as ours
        assert incident.cause == our_incident.cause == "checksum_mismatch"
    else:  # flat files state no hash: gzip's CRC catches the damage when the file is parsed
        assert incident.cause == "schema_mismatch"


def test_a_symbology_gap_opens_an_incident_and_lands_nothing(platform, monkeypatch, tmp_path):
    root = use_vendor(monkeypatch, tmp_path, "databento")
    publish_as_vendor(root, "databento", FaultSpec("symbology_gap", "XNYS", SESSION, SESSION, {"symbols": 1}))
    outcome, incident = incident_after_ingest(platform)
    assert outcome == {"landing_verification": False}
    assert incident is not None and incident.cause == "schema_mismatch"  # an unparseable delivery, as ours
    assert "symbology gap" in incident.description  # the landing fault, named, reaches the incident
    assert not LocalObjectStore(platform.home / "store").exists(
        lake.partition_key("production", "XNYS", SESSION)
    )


def failed(outcome: dict[str, bool]) -> set[str]:
    return {name for name, passed in outcome.items() if not passed} - {"freshness"}  # the simulated clock


@pytest.mark.slow  # three ingest runs and four sensor ticks
def test_a_degraded_day_opens_the_incident_our_format_opens_and_the_vendors_fix_closes_it(
    platform, monkeypatch, tmp_path
):
    # Our format on another market (one market's open incident of a cause would absorb the second fault).
    platform.publish("XLON", SESSION, FaultSpec("condition_degraded", "XLON", SESSION, SESSION, {}))
    our_checks, our_incident = incident_after_ingest(platform, "XLON")
    assert failed(our_checks) == {"manifest_reconciliation"}
    assert our_incident is not None and our_incident.cause == "vendor_degraded"

    root = use_vendor(monkeypatch, tmp_path, "databento")
    publish_as_vendor(root, "databento", FaultSpec("condition_degraded", "XNYS", SESSION, SESSION, {}))
    their_checks, incident = incident_after_ingest(platform)
    assert failed(their_checks) == {"manifest_reconciliation"}  # Databento's condition.json, judged as ours
    assert incident is not None and incident.market == "XNYS" and incident.cause == "vendor_degraded"
    assert "'degraded'" in incident.description
    store = LocalObjectStore(platform.home / "store")
    assert b'"condition": "degraded"' in store.get_bytes(
        "landing/raw/market=XNYS/session=2026-03-09/_receipt.json"
    )
    for market in ("XLON", "XNYS"):  # the vendor's own word keeps the day out of production
        assert not store.exists(lake.partition_key("production", market, SESSION))

    publish_as_vendor(root, "databento")  # the vendor re-issues the job with the day available
    fixed = materialize(platform)
    assert fixed.success and failed(checks(fixed)) == set()
    (record,) = IncidentStore(StateDB(platform.settings.state_db_url)).backfills(incident.id)
    assert record.session == SESSION.isoformat() and record.verdict == "reconciled"


@pytest.mark.parametrize("kind", ["flat", "mapped"])
def test_a_format_without_a_condition_refuses_to_rehearse_a_degraded_day(monkeypatch, tmp_path, kind):
    root = use_vendor(monkeypatch, tmp_path, kind)
    with pytest.raises(ValueError, match="condition 'degraded' cannot be published .* carry no condition"):
        publish_as_vendor(root, kind, FaultSpec("condition_degraded", "XNYS", SESSION, SESSION, {}))
