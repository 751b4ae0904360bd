import datetime as dt

import polars as pl
import pytest

from tradepulse_assets.feeds.manifest import (
    BarFileError,
    Manifest,
    ManifestError,
    ManifestFile,
    describe_file,
    parse_bar_file,
    sha256_hex,
    verify_and_parse,
    verify_and_parse_many,
    verify_file,
    write_bar_file,
)
from tradepulse_assets.feeds.simulator import simulate_session

SESSION = dt.date(2026, 3, 10)


@pytest.fixture(scope="module")
def bars(registry):
    return simulate_session(registry.get("XNYS"), SESSION, seed=5, n_symbols=3)


def _manifest(entry: ManifestFile) -> Manifest:
    return Manifest(
        "XNYS", SESSION, 1, dt.datetime(2026, 3, 10, 20, 2, tzinfo=dt.timezone.utc), "available", (entry,)
    )


def test_sha256_matches_the_known_digest_of_abc():
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_manifest_round_trips_through_canonical_json(bars):
    manifest = _manifest(describe_file("bars.parquet", write_bar_file("bars.parquet", bars)))
    again = Manifest.from_json(manifest.to_json(), "x")
    assert again == manifest and again.to_json() == manifest.to_json()
    assert again.record_count == bars.height


@pytest.mark.parametrize(
    "text, match",
    [
        (b"{not json", "not valid JSON"),
        (b'{"market": "XNYS"}', "missing field"),
        (
            b'{"market":"X","session":"2026-03-10","revision":1,"published_at":"2026-03-10T20:00:00Z",'
            b'"condition":"lost","files":[]}',
            "condition 'lost'",
        ),
    ],
)
def test_broken_manifests_raise_errors_naming_the_source(text, match):
    with pytest.raises(ManifestError, match=match) as info:
        Manifest.from_json(text, "drop/XNYS/2026-03-10/manifest.json")
    assert "drop/XNYS/2026-03-10/manifest.json" in str(info.value)


@pytest.mark.parametrize("name", ["bars.parquet", "bars.csv", "bars.csv.gz"])
def test_every_accepted_format_parses_back_to_the_same_bars(bars, name):
    parsed = parse_bar_file(name, write_bar_file(name, bars))
    assert parsed.schema == bars.schema
    assert parsed.equals(bars)


def test_verify_file_accepts_the_published_bytes_and_names_each_mismatch(bars):
    data = write_bar_file("bars.parquet", bars)
    entry = describe_file("bars.parquet", data)
    assert verify_file(entry, data) == []
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    checks = {f.check for f in verify_file(entry, bytes(flipped))}
    assert "sha256" in checks and "size" not in checks
    truncated = verify_file(entry, data[:100])
    assert {f.check for f in truncated} >= {"size", "sha256", "parse"}
    assert all(f.file == "bars.parquet" for f in truncated)
    miscounted = ManifestFile(entry.name, entry.size, entry.sha256, entry.record_count + 1)
    [fault] = verify_file(miscounted, data)
    assert fault.check == "record_count" and fault.expected == bars.height + 1 and fault.actual == bars.height


def test_parse_errors_are_typed_and_name_the_file():
    with pytest.raises(BarFileError, match="bars-1330.parquet") as info:
        parse_bar_file("bars-1330.parquet", b"PAR1 not really")
    assert info.value.name == "bars-1330.parquet"
    with pytest.raises(BarFileError, match="unsupported extension"):
        parse_bar_file("bars.xlsx", b"")


def test_csv_keeps_a_non_numeric_column_visible_for_the_schema_gate():
    text = b"symbol,ts,open,high,low,close,volume\nA,2026-03-10T13:30:00Z,1,2,0.5,1.5,lots\n"
    frame = parse_bar_file("v.csv", text)
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    assert frame.schema["open"] == pl.Float64 and frame.schema["volume"] == pl.String


def test_many_files_verify_as_each_would_alone_whatever_is_wrong_with_some(bars):
    """A streamed session's files are parsed in one read; each verdict and frame is the file's own."""
    minutes = bars.partition_by("ts", maintain_order=True)[:40]
    files = [(f"bars-{i:04d}.parquet", write_bar_file("bars.parquet", m)) for i, m in enumerate(minutes)]
    pages_damaged = bytearray(files[3][1])
    pages_damaged[4:60] = bytes(56)  # the footer (schema, row counts) intact, the data pages not
    files[3] = (files[3][0], bytes(pages_damaged))
    files[7] = (files[7][0], files[7][1][:-30])  # no readable footer
    files[11] = (files[11][0], write_bar_file("x.parquet", minutes[11].rename({"close": "last"})))
    files[12] = (files[12][0], write_bar_file("x.parquet", minutes[12].head(0)))  # no rows
    files.append(("bars-late.csv", write_bar_file("bars.csv", minutes[0])))
    entries = [describe_file(name, data) if i not in (3, 7) else ManifestFile(name, 1, "0" * 64, 3)
               for i, (name, data) in enumerate(files)]
    entries[20] = ManifestFile(entries[20].name, entries[20].size, entries[20].sha256, 99)  # miscounted

    together = verify_and_parse_many(list(zip(entries, (data for _, data in files))))

    alone = [verify_and_parse(entry, data) for entry, (_, data) in zip(entries, files)]
    assert [faults for faults, _ in together] == [faults for faults, _ in alone]
    for (_, frame), (_, expected) in zip(together, alone):
        assert (frame is None and expected is None) or (frame.schema == expected.schema and frame.equals(expected))
    assert {f.check for f in together[3][0]} >= {"parse"} and together[3][0][-1].file == "bars-0003.parquet"
    assert {f.check for f in together[7][0]} >= {"parse"}
    assert [f.check for f in together[20][0]] == ["record_count"]
    assert "last" in together[11][1].columns and together[12][1].height == 0
