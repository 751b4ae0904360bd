"""Real vendor formats: Databento batch jobs (DBN written by databento-dbn), minute-aggregate flat files and
TOML-mapped deliveries, read from a directory, moto's S3 over HTTP and an HTTPS-style file server.

The reference for every decoded frame is the simulator's own frame for the session (the bars our drop format
publishes), compared to the bit: the decoders are never checked against their own output.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import databento_dbn as dbn
import polars as pl
import pytest

from tradepulse_assets.feeds import databento
from tradepulse_assets.feeds.blobs import DirectoryBlobs, HttpBlobs, S3Blobs
from tradepulse_assets.feeds.connectors import VendorAuthError, file_parser
from tradepulse_assets.feeds.formats import FormatConnector
from tradepulse_assets.feeds.manifest import BarFileError, ManifestError, verify_file
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.object_store import S3ObjectStore
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario, strip
from tradepulse_assets.feeds.sources import RoutingConnector, connector_for, layout_for, validate_vendors
from tradepulse_assets.feeds.vendor_publish import publish_databento_job, publish_flat_files, publish_mapped
from tradepulse_assets.markets import load_registry
from tradepulse_assets.markets.registry import RegistryError, VendorSpec, parse_registry
from tradepulse_assets_tests.support.file_server import serve_files
from tradepulse_assets_tests.support.s3 import moto_s3

UTC = dt.timezone.utc
XNYS = load_registry().get("XNYS")
SESSIONS = [dt.date(2026, 3, 9), dt.date(2026, 3, 10)]
TOKEN = "vendor-files-token"
DATABENTO = VendorSpec("databento-xnas", "databento", options={"dataset": "XNAS.ITCH"})
FLAT = VendorSpec("flat", "flat_minute_aggs")
MAPPED = VendorSpec(
    "acme",
    "mapped",
    options={
        "file": "{session:%Y%m%d}_bars.csv.gz",
        "time_zone": "America/New_York",
        "bar_label": "end",
        "price_scale": 0.0001,
        "columns": {
            "symbol": "RIC",
            "ts": "Time",
            "open": "Open",
            "high": "High",
            "low": "Low",
            "close": "Last",
            "volume": "Volume",
            "trade_count": "Trades",
        },
    },
)


def reference(publisher: Publisher, session: dt.date, columns) -> pl.DataFrame:
    """The simulator's bars for the session: what our drop format publishes."""
    return strip(publisher.plan("XNYS", session).frame).select(columns).sort("symbol", "ts")


def land(connector, session: dt.date) -> tuple[list, pl.DataFrame | None]:
    """What landing does: manifest, each file verified with the connector's parser, then decoded."""
    manifest = connector.read_manifest("XNYS", session)
    parse = file_parser(connector, "XNYS", session)
    faults, frames = [], []
    for entry in manifest.files:
        data = connector.read_file("XNYS", session, entry.name)
        found = verify_file(entry, data, parse)
        faults += found
        if not found:
            frames.append(parse(entry.name, data))
    return faults, (pl.concat(frames).sort("symbol", "ts") if frames else None)


def databento_connector(root) -> FormatConnector:
    return FormatConnector(XNYS, DATABENTO.name, DirectoryBlobs(Path(root) / "XNYS"), layout_for(DATABENTO))


# --- Databento ------------------------------------------------------------------------------------------


def test_databento_job_decodes_to_the_simulators_bars_across_an_instrument_id_change(tmp_path):
    publisher = Publisher(drop_store(tmp_path), seed=11)
    job, results = publish_databento_job(
        publisher, publisher.dest, "XNYS", SESSIONS, instrument_changes={"NY003": SESSIONS[1]}
    )
    assert [r.status for r in results] == ["published", "published"]
    folder = tmp_path / "XNYS" / job
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "manifest.json",
            "metadata.json",
            "condition.json",
            "symbology.json",
            "xnas-itch-20260309.ohlcv-1m.dbn.zst",
            "xnas-itch-20260310.ohlcv-1m.dbn.zst",
        ]
    )
    symbology = json.loads((folder / "symbology.json").read_text())
    assert [e["s"] for e in symbology["result"]["NY003"]] == ["1003", "50003"]  # two ids, one symbol
    # The files are real DBN: Databento's own decoder reads them, prices in fixed-point 1e-9 units.
    decoder = dbn.DBNDecoder(compression=dbn.Compression.ZSTD)
    decoder.write((folder / "xnas-itch-20260310.ohlcv-1m.dbn.zst").read_bytes())
    metadata, first, *_ = decoder.decode()
    assert (metadata.dataset, str(metadata.schema)) == ("XNAS.ITCH", "ohlcv-1m")
    assert isinstance(first, dbn.OHLCVMsg) and first.ts_event == 1773149400 * 10**9  # 13:30 UTC bar start
    manifest_entries = json.loads((folder / "manifest.json").read_text())
    day = next(e for e in manifest_entries if e["filename"].endswith("20260310.ohlcv-1m.dbn.zst"))
    assert day["hash"] == "sha256:" + hashlib.sha256((folder / day["filename"]).read_bytes()).hexdigest()

    connector = databento_connector(tmp_path)
    for session in SESSIONS:
        faults, bars = land(connector, session)
        assert faults == []
        assert bars.equals(reference(publisher, session, bars.columns))
        assert bars.columns == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    assert connector.list_sessions("XNYS") == SESSIONS


def test_a_renamed_instrument_is_labelled_with_the_symbol_valid_on_each_date():
    day1, day2 = SESSIONS
    bars = pl.DataFrame(
        {
            "symbol": ["AAA"],
            "ts": [dt.datetime(2026, 3, 9, 14, 0, tzinfo=dt.timezone.utc)],
            "open": [10.0],
            "high": [10.5],
            "low": [9.5],
            "close": [10.25],
            "volume": [100.0],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    data1 = databento.encode_ohlcv("XNAS.ITCH", day1, bars, {"AAA": 7})
    data2 = databento.encode_ohlcv(
        "XNAS.ITCH", day2, bars.with_columns(pl.col("ts") + dt.timedelta(days=1)), {"AAA": 7}
    )
    # instrument 7 traded as OLD until 03-10, as NEW from then on
    symbology = (
        databento.SymbolInterval(7, day1, day2, "OLD"),
        databento.SymbolInterval(7, day2, SESSIONS[1] + dt.timedelta(days=1), "NEW"),
    )

    def window(d):
        return dt.datetime.combine(d, dt.time(13, 30), dt.timezone.utc), dt.datetime.combine(
            d, dt.time(20), UTC
        )

    assert databento.decode_ohlcv("a.dbn.zst", data1, symbology, window(day1))["symbol"].to_list() == ["OLD"]
    assert databento.decode_ohlcv("b.dbn.zst", data2, symbology, window(day2))["symbol"].to_list() == ["NEW"]


def test_databento_faults_surface_at_landing_named(tmp_path):
    corrupt = FaultSpec("checksum_corruption", "XNYS", SESSIONS[0], SESSIONS[0], {"bytes": 8})
    gap = FaultSpec("symbology_gap", "XNYS", SESSIONS[1], SESSIONS[1], {"symbols": 1})
    publisher = Publisher(drop_store(tmp_path), seed=11, scenarios=(Scenario("t", "", (corrupt, gap)),))
    publish_databento_job(publisher, publisher.dest, "XNYS", SESSIONS)
    connector = databento_connector(tmp_path)
    faults, bars = land(connector, SESSIONS[0])
    assert bars is None and {f.check for f in faults} >= {"sha256"}  # the job manifest's hash, verified
    faults, bars = land(connector, SESSIONS[1])
    assert bars is None and [f.check for f in faults] == ["parse"]
    (gap,) = [d for d in publisher.plan("XNYS", SESSIONS[1]).damages if d.kind == "symbology_gap"]
    assert "symbology gap" in faults[0].message and "20260310" in faults[0].file
    assert f"{1000 + sorted(XNYS.symbols).index(gap.symbols[0])}@2026-03-10" in faults[0].message


def test_truncated_or_garbage_dbn_is_a_parse_error_naming_the_file():
    bars = pl.DataFrame(
        {
            "symbol": ["A"] * 50,
            "ts": [dt.datetime(2026, 3, 9, 14, i, tzinfo=dt.timezone.utc) for i in range(50)],
            "open": [1.0] * 50,
            "high": [1.0] * 50,
            "low": [1.0] * 50,
            "close": [1.0] * 50,
            "volume": [5.0] * 50,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    data = databento.encode_ohlcv("XNAS.ITCH", SESSIONS[0], bars, {"A": 1})
    symbology = (databento.SymbolInterval(1, SESSIONS[0], SESSIONS[1], "A"),)
    window = (
        dt.datetime(2026, 3, 9, 13, 30, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 3, 9, 20, tzinfo=dt.timezone.utc),
    )
    assert databento.decode_ohlcv("d.dbn.zst", data, symbology, window).height == 50
    for broken in (data[:-1], data[: len(data) // 2], b"\x28\xb5\x2f\xfd" + b"garbage" * 20):
        with pytest.raises(BarFileError, match=r"d\.dbn\.zst"):
            databento.decode_ohlcv("d.dbn.zst", broken, symbology, window)


def test_degraded_and_missing_days_map_onto_our_conditions(tmp_path):
    degraded = FaultSpec("condition_degraded", "XNYS", SESSIONS[0], SESSIONS[0], {})
    missing = FaultSpec("stall", "XNYS", SESSIONS[1], SESSIONS[1], {"at_minute": 0})
    publisher = Publisher(
        LocalObjectStore(tmp_path), seed=11, scenarios=(Scenario("t", "", (degraded, missing)),)
    )
    job, results = publish_databento_job(publisher, publisher.dest, "XNYS", SESSIONS)
    assert [r.status for r in results] == ["published", "stalled"]
    conditions = json.loads((tmp_path / "XNYS" / job / "condition.json").read_text())
    assert [c["condition"] for c in conditions] == ["degraded", "available"]
    connector = databento_connector(tmp_path)
    assert connector.read_manifest("XNYS", SESSIONS[0]).condition == "degraded"
    assert connector.read_manifest("XNYS", SESSIONS[1]) is None  # the day file is missing: not published


def test_a_support_file_that_differs_from_the_job_manifest_is_refused(tmp_path):
    publisher = Publisher(drop_store(tmp_path), seed=11)
    job, _ = publish_databento_job(publisher, publisher.dest, "XNYS", SESSIONS[:1])
    path = tmp_path / "XNYS" / job / "symbology.json"
    path.write_text(path.read_text().replace('"1000"', '"1999"'))
    with pytest.raises(ManifestError, match="symbology.json.*hash mismatch"):
        databento_connector(tmp_path).read_manifest("XNYS", SESSIONS[0])


def test_a_later_job_redelivering_a_day_is_a_new_revision(tmp_path):
    first = Publisher(drop_store(tmp_path), seed=11)
    publish_databento_job(first, first.dest, "XNYS", SESSIONS[:1], job_id="XNAS-20260309-AAAAAAAAAA")
    assert databento_connector(tmp_path).read_manifest("XNYS", SESSIONS[0]).revision == 1
    second = Publisher(drop_store(tmp_path), seed=12)  # other bytes for the same day, processed later
    publish_databento_job(second, second.dest, "XNYS", SESSIONS[:2], job_id="XNAS-20260309-BBBBBBBBBB")
    manifest = databento_connector(tmp_path).read_manifest("XNYS", SESSIONS[0])
    assert manifest.revision == 2
    faults, bars = land(databento_connector(tmp_path), SESSIONS[0])
    assert faults == [] and bars.equals(reference(second, SESSIONS[0], bars.columns))


# --- flat files and mapped deliveries ------------------------------------------------------------------


def test_flat_files_decode_to_the_simulators_bars_within_the_session_and_universe(tmp_path):
    publisher = Publisher(drop_store(tmp_path), seed=11)
    publish_flat_files(publisher, publisher.dest, "XNYS", SESSIONS)
    path = tmp_path / "XNYS" / "2026" / "03" / "2026-03-09.csv.gz"
    import gzip

    text = gzip.decompress(path.read_bytes()).decode()
    assert text.splitlines()[0] == "ticker,volume,open,close,high,low,window_start,transactions"
    # The vendor's day file also carries pre-market bars and tickers outside our universe: not ours.
    lines = text.splitlines()
    extra = [
        "ZZZZ,100,1.0,1.0,1.0,1.0,1773063000000000000,3",
        f"NY000,100,1.0,1.0,1.0,1.0,{1773036000 * 10**9},3",
    ]
    path.write_bytes(gzip.compress("\n".join(lines + extra).encode() + b"\n"))
    connector = FormatConnector(XNYS, "flat", DirectoryBlobs(tmp_path / "XNYS"), layout_for(FLAT))
    for session in SESSIONS:
        faults, bars = land(connector, session)
        assert faults == []
        assert bars.columns == ["symbol", "ts", "open", "high", "low", "close", "volume", "trade_count"]
        assert bars.equals(reference(publisher, session, bars.columns))
    assert connector.read_manifest("XNYS", dt.date(2026, 3, 11)) is None
    assert connector.list_sessions("XNYS") == SESSIONS


def test_mapped_delivery_in_local_time_with_scaled_prices_round_trips(tmp_path):
    publisher = Publisher(drop_store(tmp_path), seed=11)
    publish_mapped(publisher, publisher.dest, MAPPED, "XNYS", SESSIONS)
    text = pl.read_csv(tmp_path / "XNYS" / "20260309_bars.csv.gz")
    assert text.columns == ["RIC", "Time", "Open", "High", "Low", "Last", "Volume", "Trades"]
    assert text["Time"][0] == "2026-03-09T09:31:00.000000"  # New York wall clock, end-of-bar label
    assert text["Open"].dtype == pl.Int64
    connector = FormatConnector(XNYS, "acme", DirectoryBlobs(tmp_path / "XNYS"), layout_for(MAPPED))
    for session in SESSIONS:
        faults, bars = land(connector, session)
        assert faults == []
        assert bars.equals(reference(publisher, session, bars.columns))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"file": "bars.csv"}, r"must contain \{session\}"),
        ({"file": "{session}.xlsx"}, "must end in one of"),
        ({"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"time_unit": "minutes"}, "time_unit.*not one of"),
        ({"price_scale": 0}, "price_scale.*positive"),
        ({"colour": "red"}, "unknown option.*colour"),
        ({"columns": {"symbol": "RIC"}}, "columns: missing ts"),
        (
            {
                "columns": {
                    "symbol": "a",
                    "ts": "b",
                    "open": "c",
                    "high": "d",
                    "low": "e",
                    "close": "f",
                    "volume": "g",
                    "bid": "h",
                }
            },
            "bid are not bar columns",
        ),
    ],
)
def test_a_mapping_is_validated_with_the_field_named(change, message):
    spec = VendorSpec("acme", "mapped", options={**MAPPED.options, **change})
    with pytest.raises(RegistryError, match=r"\[vendors\.acme\].*" + message):
        layout_for(spec)


def test_a_file_lacking_a_mapped_column_is_a_parse_fault_naming_it(tmp_path):
    (tmp_path / "XNYS").mkdir()
    pl.DataFrame({"RIC": ["NY000"], "Time": ["2026-03-09T09:31:00"]}).write_csv(
        tmp_path / "XNYS" / "2026-03-09.csv"
    )
    spec = VendorSpec("acme", "mapped", options={**MAPPED.options, "file": "{session}.csv"})
    connector = FormatConnector(XNYS, "acme", DirectoryBlobs(tmp_path / "XNYS"), layout_for(spec))
    (fault,) = land(connector, SESSIONS[0])[0]
    assert fault.check == "parse" and fault.file == "2026-03-09.csv"
    assert "missing column(s) 'Open' (for open)" in fault.message


# --- registry and the one dispatch ---------------------------------------------------------------------

REGISTRY_TOML = """
[markets.XNYS]
calendar = "XNYS"
ingestion_mode = "batch"
lag_sla_seconds = 300
universe_size = 24
symbol_prefix = "NY"
vendor = "{vendor}"

[markets.XHKG]
calendar = "XHKG"
ingestion_mode = "{hk_mode}"
lag_sla_seconds = 60
universe_size = 16
symbol_prefix = "HK"
vendor = "{hk_vendor}"

[vendors.databento-xnas]
format = "databento"
dataset = "XNAS.ITCH"
{extra}
"""


def registry_text(vendor="databento-xnas", hk_mode="streaming", hk_vendor="simulator", extra=""):
    return REGISTRY_TOML.format(vendor=vendor, hk_mode=hk_mode, hk_vendor=hk_vendor, extra=extra)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vendor": "bloomberg"}, "names vendor 'bloomberg', which is neither built in"),
        ({"hk_vendor": "databento-xnas"}, "XHKG streams, but vendor 'databento-xnas' delivers databento"),
        ({"extra": "[vendors.odd]\nformat = 'fax'"}, r"\[vendors.odd\]: format 'fax' is not one of"),
        ({"extra": "[vendors.simulator]\nformat = 'databento'"}, "is a built-in vendor"),
    ],
)
def test_registry_refuses_inconsistent_vendor_tables(kwargs, message):
    with pytest.raises(RegistryError, match=message):
        parse_registry(registry_text(**kwargs), "test.toml")


def test_vendor_options_are_validated_at_start_up():
    registry = parse_registry(registry_text(extra="colour = 'red'"), "test.toml")
    with pytest.raises(RegistryError, match=r"test.toml: \[vendors.databento-xnas\]: unknown option"):
        validate_vendors(registry)


def test_the_one_dispatch_routes_each_market_to_its_format(tmp_path):
    registry = parse_registry(registry_text(), "test.toml")
    validate_vendors(registry)
    connector = connector_for(str(tmp_path), registry=registry, environ={})
    assert isinstance(connector, RoutingConnector)
    assert isinstance(connector.connector("XNYS"), FormatConnector)
    assert type(connector.connector("XHKG")).__name__ == "DirectoryConnector"
    plain = connector_for(
        str(tmp_path), registry=parse_registry(registry_text(vendor="simulator"), "t"), environ={}
    )
    assert type(plain).__name__ == "DirectoryConnector"
    http = connector_for("http://127.0.0.1:9/", registry=registry, environ={"TRADEPULSE_VENDOR_TOKEN": "t0k"})
    assert http.default.timeout == 10.0 and "t0k" not in repr(http)  # the CLI path now has the timeout too


# --- transports: S3 over HTTP (moto) and an HTTPS-style file server -----------------------------------


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    with serve_files(root, TOKEN) as url:
        yield root, url


def test_databento_job_over_s3_and_http(tmp_path, file_server):
    publisher = Publisher(drop_store(tmp_path / "local"), seed=11)
    job, _ = publish_databento_job(publisher, publisher.dest, "XNYS", SESSIONS)
    with moto_s3("databento-jobs") as s3:
        client = s3.client()
        dest = S3ObjectStore(client, s3.bucket, "jobs")
        for path in (tmp_path / "local" / "XNYS").rglob("*"):
            if path.is_file():
                dest.put_bytes(f"XNYS/{path.relative_to(tmp_path / 'local' / 'XNYS')}", path.read_bytes())
        connector = FormatConnector(
            XNYS, "db", S3Blobs(client, s3.bucket, "jobs/XNYS"), layout_for(DATABENTO)
        )
        faults, bars = land(connector, SESSIONS[1])
        assert faults == [] and bars.equals(reference(publisher, SESSIONS[1], bars.columns))
    root, url = file_server
    (root / "XNYS").symlink_to(tmp_path / "local" / "XNYS" / job)  # the server exposes one job folder
    connector = FormatConnector(XNYS, "db", HttpBlobs(f"{url}/XNYS", token=TOKEN), layout_for(DATABENTO))
    faults, bars = land(connector, SESSIONS[0])
    assert faults == [] and bars.equals(reference(publisher, SESSIONS[0], bars.columns))
    refused = FormatConnector(
        XNYS, "db", HttpBlobs(f"{url}/XNYS", token="wrong", retries=0), layout_for(DATABENTO)
    )
    with pytest.raises(VendorAuthError):
        refused.read_manifest("XNYS", SESSIONS[0])


def test_flat_files_over_s3_and_http(tmp_path, file_server):
    root, url = file_server
    publisher = Publisher(drop_store(root), seed=11)
    publish_flat_files(publisher, publisher.dest, "XNYS", SESSIONS)
    connector = FormatConnector(XNYS, "flat", HttpBlobs(f"{url}/XNYS", token=TOKEN), layout_for(FLAT))
    faults, bars = land(connector, SESSIONS[0])
    assert faults == [] and bars.equals(reference(publisher, SESSIONS[0], bars.columns))
    assert connector.read_manifest("XNYS", dt.date(2026, 3, 11)) is None  # 404: not published
    with moto_s3("flat-files") as s3:
        client = s3.client()
        s3_publisher = Publisher(S3ObjectStore(client, s3.bucket, "us_stocks_sip/minute_aggs_v1"), seed=11)
        publish_flat_files(s3_publisher, s3_publisher.dest, "XNYS", SESSIONS)
        blobs = S3Blobs(client, s3.bucket, "us_stocks_sip/minute_aggs_v1/XNYS")
        connector = FormatConnector(XNYS, "flat", blobs, layout_for(FLAT))
        faults, bars = land(connector, SESSIONS[1])
        assert faults == [] and bars.equals(reference(s3_publisher, SESSIONS[1], bars.columns))


def test_cli_publishes_in_the_markets_vendor_format_and_quality_check_reads_it(tmp_path, monkeypatch, capsys):
    from tradepulse_assets.cli.main import main

    registry = tmp_path / "markets.toml"
    registry.write_text(registry_text(hk_vendor="simulator"))
    monkeypatch.setenv("TRADEPULSE_MARKETS_FILE", str(registry))
    args = [
        "vendor",
        "publish",
        "--market",
        "XNYS",
        "--start",
        "2026-03-09",
        "--end",
        "2026-03-10",
        "--dest",
        str(tmp_path / "vendor"),
        "--seed",
        "3",
        "--as-vendor",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in out["results"]] == ["published", "published"]
    (job,) = (tmp_path / "vendor" / "XNYS").iterdir()
    assert (job / "xnas-itch-20260310.ohlcv-1m.dbn.zst").is_file()
    code = main(
        [
            "quality",
            "check",
            "--source",
            str(tmp_path / "vendor"),
            "--market",
            "XNYS",
            "--session",
            "2026-03-10",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        code == 0 and report["passed"] is True and report["blocking_failures"] == []
    )  # every gate, pre-flight
    registry.write_text(registry_text(vendor="simulator"))  # a drop-format market has no vendor format
    assert main(args) != 0
    assert "delivers our drop format" in capsys.readouterr().err


def test_a_sensor_asking_again_does_not_download_the_day_file_again(tmp_path):
    publisher = Publisher(drop_store(tmp_path), seed=11)
    publish_databento_job(publisher, publisher.dest, "XNYS", SESSIONS[:1])
    reads = []

    class Counting(DirectoryBlobs):
        def get(self, path):
            reads.append(path)
            return super().get(path)

    def manifest():
        connector = FormatConnector(XNYS, "db", Counting(tmp_path / "XNYS"), layout_for(DATABENTO))
        return connector.read_manifest("XNYS", SESSIONS[0])  # a new connector per tick, as the sensors do

    first = manifest()
    assert any(p.endswith(".dbn.zst") for p in reads)
    reads.clear()
    assert manifest() == first and not any(p.endswith(".dbn.zst") for p in reads)  # only the job's JSON files
