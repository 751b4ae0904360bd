"""The Parquet lake: partitions are replaced idempotently, read back by polars and DuckDB on both stores."""

import hashlib
import io
from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tradepulse_assets.storage.home import InvalidIdentifier
from tradepulse_assets.storage.lake import (
    LakeError,
    delete_partition,
    duckdb_view_sql,
    feature_layer,
    list_markets,
    list_quarantine_batches,
    list_sessions,
    partition_key,
    quarantine_key,
    read_frame,
    read_frames,
    read_quarantine_reason,
    register_duckdb_view,
    write_frame,
    write_quarantine,
)
from tradepulse_assets.storage.object_store import LocalObjectStore, ObjectNotFound, S3ObjectStore

SESSIONS = [date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 9)]


def bars(session: date, seed: int, symbols: int = 3, minutes: int = 30) -> pl.DataFrame:
    """A seeded bars-like frame: symbol, ts (UTC, minute labels), OHLCV."""
    rng = np.random.default_rng(seed)
    start = datetime(session.year, session.month, session.day, 14, 30, tzinfo=UTC)
    ts = [start + timedelta(minutes=m) for m in range(minutes)]
    close = 100 + rng.standard_normal((symbols, minutes)).cumsum(axis=1)
    return pl.DataFrame(
        {
            "symbol": np.repeat([f"S{i:03d}" for i in range(symbols)], minutes),
            "ts": ts * symbols,
            "open": close.ravel() - 0.1,
            "high": close.ravel() + 0.5,
            "low": close.ravel() - 0.5,
            "close": close.ravel(),
            "volume": rng.integers(1, 1000, symbols * minutes).astype(float),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def test_partition_key_layout():
    assert partition_key("production", "XNYS", date(2026, 3, 9)) == (
        "lake/production/market=XNYS/session=2026-03-09/part-0.parquet"
    )
    assert partition_key(feature_layer("hurst"), "XHKG", "2026-02-16") == (
        "lake/features/hurst/market=XHKG/session=2026-02-16/part-0.parquet"
    )
    for bad in (
        ("gold", "XNYS", "2026-03-09"),
        ("features/Bad-Name", "XNYS", "2026-03-09"),
        ("staging", "XN/YS", "2026-03-09"),
        ("staging", "XNYS", "2026-13-01"),
        ("staging", "XNYS|2026", "2026-03-09"),
        ("staging", "XNYS", datetime(2026, 3, 9)),
    ):
        with pytest.raises(LakeError):
            partition_key(*bad)


def test_round_trip_and_idempotent_rewrite(store):
    first, second = bars(SESSIONS[0], seed=1), bars(SESSIONS[0], seed=2, minutes=10)
    key = write_frame(store, "staging", "XNYS", SESSIONS[0], first)
    assert_frame_equal(read_frame(store, "staging", "XNYS", SESSIONS[0]), first)

    assert (
        write_frame(store, "staging", "XNYS", SESSIONS[0], second) == key
    )  # a re-run replaces the partition
    assert store.list_keys("lake/staging/") == [key]
    assert_frame_equal(read_frame(store, "staging", "XNYS", SESSIONS[0]), second)


def test_sessions_listing_concatenation_and_deletion(store):
    frames = {session: bars(session, seed=i) for i, session in enumerate(SESSIONS)}
    for session in reversed(SESSIONS):
        write_frame(store, "production", "XNYS", session, frames[session])
    write_frame(store, "production", "XLON", SESSIONS[1], bars(SESSIONS[1], seed=9))
    write_frame(store, "staging", "XNYS", SESSIONS[2], bars(SESSIONS[2], seed=9))

    assert list_sessions(store, "production", "XNYS") == SESSIONS
    assert list_sessions(store, "production", "XLON") == [SESSIONS[1]]
    assert list_sessions(store, "production", "XHKG") == []
    assert list_markets(store, "production") == ["XLON", "XNYS"]

    together = read_frames(store, "production", "XNYS", SESSIONS)
    assert_frame_equal(together, pl.concat([frames[s] for s in SESSIONS]))

    assert delete_partition(store, "production", "XNYS", SESSIONS[1]) is True
    assert delete_partition(store, "production", "XNYS", SESSIONS[1]) is False
    assert list_sessions(store, "production", "XNYS") == [SESSIONS[0], SESSIONS[2]]
    with pytest.raises(ObjectNotFound, match="market=XNYS/session=2026-03-06"):
        read_frames(store, "production", "XNYS", SESSIONS)
    skipped = read_frames(store, "production", "XNYS", SESSIONS, skip_missing=True)
    assert skipped.height == frames[SESSIONS[0]].height + frames[SESSIONS[2]].height


def test_optional_columns_missing_in_some_sessions_become_null(store):
    with_vwap = bars(SESSIONS[0], seed=1).with_columns(vwap=pl.col("close"))
    write_frame(store, "production", "XNYS", SESSIONS[0], with_vwap)
    write_frame(store, "production", "XNYS", SESSIONS[1], bars(SESSIONS[1], seed=2))
    together = read_frames(store, "production", "XNYS", SESSIONS[:2])
    assert together.get_column("vwap").null_count() == bars(SESSIONS[1], seed=2).height


def test_a_partition_column_that_disagrees_with_the_path_is_refused(store):
    frame = bars(SESSIONS[0], seed=1).with_columns(market=pl.lit("XLON"))
    with pytest.raises(LakeError, match="column 'market' has 90 row"):
        write_frame(store, "staging", "XNYS", SESSIONS[0], frame)
    assert store.list_keys() == []
    agreeing = bars(SESSIONS[0], seed=1).with_columns(market=pl.lit("XNYS"))
    write_frame(store, "staging", "XNYS", SESSIONS[0], agreeing)


def test_corrupt_partition_names_the_key(store):
    store.put_bytes(partition_key("staging", "XNYS", SESSIONS[0]), b"PAR1 truncated")
    with pytest.raises(LakeError, match="lake/staging/market=XNYS/session=2026-03-05/part-0.parquet"):
        read_frame(store, "staging", "XNYS", SESSIONS[0])


def test_polars_reads_a_partition_through_polars_source(store):
    frame = bars(SESSIONS[2], seed=5)
    key = write_frame(store, "production", "XNYS", SESSIONS[2], frame)
    source = store.polars_source(key)
    if isinstance(store, S3ObjectStore):
        assert source == f"s3://{store.bucket}/{key}"
        assert store.storage_options["aws_allow_http"] == "true"
    else:
        assert source == str(store.root / key)
    assert_frame_equal(pl.read_parquet(source, storage_options=store.storage_options), frame)
    lazy = pl.scan_parquet(source, storage_options=store.storage_options).filter(pl.col("symbol") == "S001")
    assert_frame_equal(lazy.collect(), frame.filter(pl.col("symbol") == "S001"))


def _expected_daily_volume(
    frames: dict[tuple[str, date], pl.DataFrame],
) -> list[tuple[str, date, float, int]]:
    """Independent reference: totals computed in Python from the frames we wrote."""
    return sorted(
        (market, session, float(np.sum(frame["volume"].to_numpy())), frame.height)
        for (market, session), frame in frames.items()
    )


QUERY = "SELECT market, session, sum(volume), count(*) FROM bars GROUP BY ALL ORDER BY market, session"


def test_duckdb_queries_the_local_lake_with_hive_partitions(tmp_path):
    store = LocalObjectStore(tmp_path)
    frames = {
        (m, s): bars(s, seed=i, symbols=2 + i)
        for i, (m, s) in enumerate([("XNYS", SESSIONS[0]), ("XNYS", SESSIONS[2]), ("XLON", SESSIONS[1])])
    }
    for (market, session), frame in frames.items():
        write_frame(store, "production", market, session, frame)

    con = duckdb.connect()
    con.execute(duckdb_view_sql(store, "production", "bars"))
    rows = con.execute(QUERY).fetchall()
    assert [(m, s, pytest.approx(v), n) for m, s, v, n in rows] == _expected_daily_volume(frames)
    # partition pruning by path columns works as a filter
    assert con.execute("SELECT count(*) FROM bars WHERE session = DATE '2026-03-09'").fetchone()[0] == (
        frames[("XNYS", SESSIONS[2])].height
    )
    with pytest.raises(LakeError):
        duckdb_view_sql(store, "production", "bars; DROP TABLE x")


def test_duckdb_view_gives_the_same_answer_on_both_stores(store):
    frames = {
        ("XNYS", SESSIONS[0]): bars(SESSIONS[0], seed=3),
        ("XHKG", SESSIONS[1]): bars(SESSIONS[1], seed=4),
    }
    for (market, session), frame in frames.items():
        write_frame(store, feature_layer("kuramoto"), market, session, frame)
    con = duckdb.connect()
    register_duckdb_view(con, store, feature_layer("kuramoto"), "bars")
    rows = con.execute(QUERY).fetchall()
    assert [(m, s, pytest.approx(v), n) for m, s, v, n in rows] == _expected_daily_volume(frames)
    with pytest.raises(LakeError, match="no partitions"):
        register_duckdb_view(con, store, "landing", "empty")


# ------------------------------------------------------------------------------------------ quarantine


def test_quarantine_keys_and_id_validation():
    assert (
        quarantine_key("INC-7", "XNYS_2026-03-09.b1", "bars.csv.gz")
        == "quarantine/INC-7/XNYS_2026-03-09.b1/bars.csv.gz"
    )
    for incident, batch, name in (
        ("INC-7", "a|b", "f"),
        ("INC-7", "a/b", "f"),
        ("INC/7", "b", "f"),
        ("INC-7", "..", "f"),
        ("INC-7", "", "f"),
    ):
        with pytest.raises(InvalidIdentifier):
            quarantine_key(incident, batch, name)
    for name in ("reason.json", "dir/file", ".."):
        with pytest.raises(ValueError):
            quarantine_key("INC-7", "b1", name)


def test_quarantined_batch_keeps_original_bytes_tags_and_reason(store):
    files = {"XNYS_2026-03-09.csv": b"symbol,ts\nS001,garbage\n", "manifest.json": b'{"sha256": "bad"}'}
    keys = write_quarantine(
        store,
        "INC-7",
        "b1",
        files,
        {"fault": "checksum mismatch", "partition": "XNYS/2026-03-09"},
        tags={"market": "XNYS"},
    )
    assert keys[-1] == "quarantine/INC-7/b1/reason.json"
    for name, data in files.items():
        key = quarantine_key("INC-7", "b1", name)
        assert store.get_bytes(key) == data
        assert store.get_tags(key) == {"market": "XNYS", "incident_id": "INC-7", "batch_id": "b1"}
    reason = read_quarantine_reason(store, "INC-7", "b1")
    assert reason["fault"] == "checksum mismatch"
    assert {f["name"]: f["sha256"] for f in reason["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }
    store.put_bytes(quarantine_key("INC-8", "incomplete", "x.csv"), b"x")  # no reason.json yet: not listed
    assert list_quarantine_batches(store) == [("INC-7", "b1")]
    assert list_quarantine_batches(store, "INC-8") == []


def test_parquet_bytes_written_are_readable_without_the_store(store):
    """What lands in the object is plain Parquet (any reader, e.g. pyarrow via polars from bytes)."""
    frame = bars(SESSIONS[0], seed=11)
    key = write_frame(store, "landing", "CRYPTO", SESSIONS[0], frame)
    data = store.get_bytes(key)
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
    assert_frame_equal(pl.read_parquet(io.BytesIO(data)), frame)
