"""Every hostile delivery of issue #11 (and those that already held, so they keep holding) through
``tradepulse-cli quality check`` and through a real Dagster materialisation, as production runs them.

Each case first runs ``quality check`` (text and ``--json``): exit code, the one line naming the blocking
gate, the gate's one-line summary. Then the market's ingest job (landed -> staging -> production assets with
their checks) on an ephemeral instance, one tick of the quality-failure sensor and the quarantine run it
requests: the run fails on the case's gate with the same summary, and the quarantine holds the delivery
exactly as the vendor delivered it (reason.json naming its digest, revision and faults, listing its files).
Production (the clean revision 1) is byte for byte unchanged after each step. No daemon: the sensor is ticked
by hand. One clean production per module (conftest), one definitions object per module.
"""

import json
import os

import dagster as dg
import pytest
from dagster._core.definitions.partitions.context import partition_loading_context

from tradepulse_assets.cli.main import main
from tradepulse_assets.defs.definitions import build_definitions, build_resources
from tradepulse_assets.feeds.manifest import MANIFEST_NAME, sha256_hex
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import quarantine
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets_tests.adversarial.cases import BARS, CASES, MARKET, SESSION
from tradepulse_assets_tests.adversarial.conftest import settings_for

BLOCKED = 1
INGEST_JOB, QUARANTINE_JOB = f"{MARKET.lower()}_ingest", "quarantine_batch"
BAR_ASSETS = [dg.AssetKey([MARKET.lower(), n]) for n in ("landed_bars", "staging_bars", "production_bars")]


@pytest.fixture(scope="module")
def defs(platform_root) -> dg.Definitions:
    return build_definitions(load_registry(), settings_for(platform_root[1]))


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


class Loop:
    """The ingest job, the quality-failure sensor and the quarantine job on one instance."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, hostile):
        self.defs, self.instance = defs, instance
        self.resources = build_resources(hostile.settings)
        self.cursor = self.tick()[1]  # the first tick of a run-status sensor only sets its cursor

    def ingest(self, tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
        """The ingest job's bar assets (its consumers need numba and add nothing to what is tested here)."""
        return self.defs.resolve_job_def(INGEST_JOB).execute_in_process(
            partition_key=SESSION.isoformat(), instance=self.instance, raise_on_error=False,
            asset_selection=BAR_ASSETS, tags=tags,
        )

    def evaluate(self, name: str, cursor: str | None = None):
        context = dg.build_sensor_context(instance=self.instance, cursor=cursor, resources=self.resources,
                                          definitions=self.defs)
        with partition_loading_context(dynamic_partitions_store=self.instance):
            return self.defs.resolve_sensor_def(name).evaluate_tick(context)

    def tick(self) -> tuple[list[dg.RunRequest], str | None]:
        """One tick of the quality-failure sensor."""
        data = self.evaluate("quality_failure_sensor", getattr(self, "cursor", None))
        self.cursor = data.cursor
        return list(data.run_requests or []), data.cursor

    def quarantine(self, request: dg.RunRequest) -> dict:
        result = self.defs.resolve_job_def(QUARANTINE_JOB).execute_in_process(
            partition_key=request.partition_key, instance=self.instance, tags=request.tags
        )
        (materialization,) = result.get_asset_materialization_events()
        return {k: v.value for k, v in materialization.materialization.metadata.items()}


def landed_delivery(result: dg.ExecuteInProcessResult) -> tuple[str, int]:
    """(delivery digest, revision) the run's landing recorded."""
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] == "landed_bars":
            metadata = event.materialization.metadata
            return metadata["delivery"].value, metadata["revision"].value
    raise AssertionError("the run landed nothing")


def held_files(hostile, prefix: str) -> dict[str, bytes]:
    return {k.rsplit("/", 1)[-1]: hostile.store.get_bytes(k) for k in hostile.store.list_keys(prefix)}


def assert_blocked(case, result, hostile) -> None:
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = evaluations[case.gate]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert case.fragment in failed.description and "\n" not in failed.description
    assert "production_bars" not in {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    hostile.assert_production_unchanged()


def assert_verbatim(hostile, batch: dict, digest: str, revision: int) -> dict:
    """The batch holds the delivered bytes (each equal to the drop's file of that name) and a reason.json
    that names the delivery and lists exactly those files."""
    files = held_files(hostile, batch["prefix"])
    reason = lake.read_quarantine_reason(hostile.store, batch["incident_id"], batch["batch_id"])
    del files["reason.json"]
    assert (reason["delivery"], reason["revision"]) == (digest, revision)
    assert {f["name"]: (f["size"], f["sha256"]) for f in reason["files"]} == {
        name: (len(data), sha256_hex(data)) for name, data in files.items()
    }
    session_folder = hostile.folder
    for name, data in files.items():
        assert data == (session_folder / name).read_bytes(), f"{name} is not the delivered bytes"
    return reason


def _check(*extra: str) -> int:
    return main(["quality", "check", "--source", os.environ["TRADEPULSE_VENDOR_SOURCE"], "--market", MARKET,
                 "--session", SESSION.isoformat(), *extra])


def assert_quality_check_blocks(case, hostile, capsys) -> None:
    code = _check()
    out, err = capsys.readouterr()
    assert code == BLOCKED, err
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"{MARKET} {SESSION}: BLOCKED by ") and case.gate in last.split("BLOCKED by ")[1]
    assert "Traceback" not in out + err
    assert _check("--json") == BLOCKED
    results = {r["gate"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    verdict = results[case.gate]
    assert verdict["passed"] is False and verdict["blocking"] is True
    assert case.fragment in verdict["summary"] and "\n" not in verdict["summary"]
    hostile.assert_production_unchanged()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_delivery_is_blocked_by_quality_check_and_by_dagster_and_quarantined_verbatim(
    case, hostile, defs, instance, capsys
):
    case.mutate(hostile.folder)
    assert_quality_check_blocks(case, hostile, capsys)
    loop = Loop(defs, instance, hostile)
    result = loop.ingest()
    assert_blocked(case, result, hostile)
    digest, revision = landed_delivery(result)
    (request,) = loop.tick()[0]
    batch = loop.quarantine(request)
    assert batch["batch_id"] == quarantine.batch_id_for(MARKET, SESSION, revision, digest)
    reason = assert_verbatim(hostile, batch, digest, revision)
    if os.path.islink(hostile.folder):  # refused whole: nothing was read, so nothing is kept but the reason
        assert reason["files"] == [] and "symbolic link" in reason["landing_faults"][0]["message"]
    else:
        assert MANIFEST_NAME in {f["name"] for f in reason["files"]}  # as delivered, even unparsable
    if case.gate == "landing_verification":
        assert reason["landing_faults"], "the landing faults of this delivery are in its reason"
    else:
        assert case.gate in reason["reason"]
    hostile.assert_production_unchanged()


def _damage(folder) -> bytes:
    bad = bytearray((folder / BARS).read_bytes())
    bad[100:108] = b"\x00" * 8
    return bytes(bad)


def test_a_fix_in_place_before_the_sensor_ticks_cannot_change_the_evidence(hostile, defs, instance):
    """The vendor corrupts revision 2 (its manifest with fields and a layout of its own), the run fails, the
    vendor fixes the file in place and a second run promotes it: only then does the failure sensor tick. The
    quarantine still holds the bytes that failed, and the manifest as it was delivered."""
    loop = Loop(defs, instance, hostile)
    good = (hostile.folder / BARS).read_bytes()
    manifest = (hostile.folder / MANIFEST_NAME).read_text().replace('"revision": 1', '"revision": 2')
    manifest = manifest.replace("{", '{\n    "x_vendor_note": "restated after an exchange correction",', 1)
    (hostile.folder / MANIFEST_NAME).write_text(manifest)
    bad = _damage(hostile.folder)
    (hostile.folder / BARS).write_bytes(bad)
    failed = loop.ingest()
    assert not failed.success
    (hostile.folder / BARS).write_bytes(good)  # the fix in place
    assert loop.ingest().success
    (request,) = loop.tick()[0]  # only now: the first failure
    batch = loop.quarantine(request)
    held = held_files(hostile, batch["prefix"])
    assert held[BARS] == bad and held[MANIFEST_NAME] == manifest.encode()
    reason = lake.read_quarantine_reason(hostile.store, batch["incident_id"], batch["batch_id"])
    assert reason["delivery"] == landed_delivery(failed)[0] and reason["revision"] == 2
    assert "sha256" in {f["check"] for f in reason["landing_faults"]}
    listed = {f["name"]: f["sha256"] for f in reason["files"]}
    assert listed == {BARS: sha256_hex(bad), MANIFEST_NAME: sha256_hex(manifest.encode())}


def test_one_batch_per_delivery_and_the_audit_trail_records_every_step(hostile, defs, instance, capsys):
    loop = Loop(defs, instance, hostile)
    (hostile.folder / BARS).write_bytes(_damage(hostile.folder))
    first = loop.ingest()
    (request,) = loop.tick()[0]
    loop.quarantine(request)
    loop.quarantine(request)  # a retried quarantine run rewrites nothing
    second = loop.ingest()  # the same bytes fail again: the same delivery, no second batch
    assert landed_delivery(second) == landed_delivery(first)
    requests, _ = loop.tick()
    assert requests == []
    assert len(lake.list_quarantine_batches(hostile.store)) == 1
    assert main(["ingest", "quarantine", "release", request.partition_key, "--reason", "vendor re-sent",
                 "--by", "ana"]) == 0
    capsys.readouterr()
    events = AuditLog(hostile.home).read()
    kinds = [e["event"] for e in events]
    assert {"landing", "promotion", "quarantine", "release"} <= set(kinds) and kinds.count("quarantine") == 1
    for event in events:
        assert len(event["sha256"]) == 64 and event.get("revision") is not None, event
    digest = landed_delivery(first)[0]
    assert [e["sha256"] for e in events if e["event"] in ("quarantine", "release")] == [digest, digest]


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("malformed_manifest", "symlinked_session")],
                         ids=lambda c: c.name)
def test_the_publication_sensor_lands_an_unreadable_manifest_once_then_waits(case, hostile, defs, instance):
    """Not "not published" and not a crashed tick: one run, which fails and is quarantined, then nothing until
    the vendor changes the delivery."""
    loop = Loop(defs, instance, hostile)
    case.mutate(hostile.folder)
    sensor = f"{MARKET.lower()}_publication_sensor"
    (launch,) = loop.evaluate(sensor).run_requests
    assert launch.partition_key == SESSION.isoformat() and ":r0:" in launch.run_key
    assert not loop.ingest(launch.tags).success
    (request,) = loop.tick()[0]
    loop.quarantine(request)
    assert not loop.evaluate(sensor).run_requests
    hostile.assert_production_unchanged()
