"""The suite as a whole (robust to a frame that failed the schema) and the DuckDB-queryable health catalog."""

import datetime as dt
import json

import duckdb
import polars as pl
import pytest

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.quality import (
    GATE_NAMES,
    failed_gates,
    health_catalog_sql,
    read_health,
    run_gate_suite,
    suite_passed,
    write_health,
)
from tradepulse_assets.quality.catalog import HealthCatalogError
from tradepulse_assets_tests.quality.synth import clean_session, utc

XNYS = calendar_for("XNYS", "XNYS")
DAY = dt.date(2026, 3, 5)
AT = utc(2026, 3, 5, 21, 30)


def test_suite_reports_every_gate_in_contract_order():
    results = run_gate_suite(
        clean_session("XNYS", DAY),
        XNYS,
        DAY,
        vendor_total=24 * 390,
        checksums_ok=True,
        landed_at=utc(2026, 3, 5, 21, 2),
        deadline=utc(2026, 3, 5, 21, 5),
        expected_symbols=load_registry().get("XNYS").symbols,
    )
    assert [r.gate for r in results] == list(GATE_NAMES)
    assert all(r.passed and r.evaluated for r in results)
    for r in results:
        json.dumps(r.to_metadata())


def test_missing_column_fails_schema_and_only_dependent_gates_are_not_evaluated():
    frame = clean_session("XNYS", DAY).drop("volume")
    by_gate = {r.gate: r for r in run_gate_suite(frame, XNYS, DAY)}
    assert not by_gate["schema"].passed
    assert not by_gate["negative_volume"].evaluated and not by_gate["negative_volume"].passed
    assert by_gate["negative_volume"].summary.startswith(
        "not evaluated: schema failed (column volume is missing"
    )
    assert by_gate["ohlc_consistency"].evaluated and by_gate["ohlc_consistency"].passed
    assert by_gate["completeness"].passed


def test_wrong_ts_type_stops_the_calendar_gates_without_crashing():
    frame = clean_session("XNYS", DAY).with_columns(
        pl.col("ts").dt.replace_time_zone(None)
    )  # naive local-ish
    by_gate = {r.gate: r for r in run_gate_suite(frame, XNYS, DAY)}
    for gate in (
        "duplicate_bars",
        "monotonic_timestamps",
        "completeness",
        "calendar_alignment",
        "price_spikes",
        "price_scale",
        "stale_prices",
    ):
        assert not by_gate[gate].evaluated and "column ts has type" in by_gate[gate].summary
    assert by_gate["ohlc_consistency"].passed


def test_suite_passed_counts_blocking_gates_only_by_default():
    frame = clean_session("XNYS", DAY, seed=3)
    hit = (pl.col("symbol") == "NY001") & (pl.col("ts") == utc(2026, 3, 5, 16))
    frame = frame.with_columns(
        pl.when(hit).then(pl.col(c) * 1.25).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "vwap")
    )
    results = run_gate_suite(frame, XNYS, DAY)
    assert failed_gates(results) == ["price_spikes"]
    assert suite_passed(results) and not suite_passed(results, blocking_only=False)
    frame = frame.with_columns(volume=pl.when(hit).then(-5.0).otherwise(pl.col("volume")))
    assert not suite_passed(run_gate_suite(frame, XNYS, DAY))


def test_health_catalog_roundtrip_and_duckdb_view(tmp_path):
    root = tmp_path / "observability" / "catalog" / "data_health"
    con = duckdb.connect()
    con.execute(health_catalog_sql(root))
    assert con.execute("SELECT count(*) FROM data_health").fetchone() == (0,)

    clean = run_gate_suite(clean_session("XNYS", DAY), XNYS, DAY)
    broken = run_gate_suite(clean_session("XNYS", DAY).drop("volume"), XNYS, DAY)
    write_health(root, "XNYS", DAY, clean, AT, "run-1")
    write_health(root, "XNYS", dt.date(2026, 3, 6), broken, AT, "run-2")
    write_health(root, "XLON", DAY, clean, AT, "run-3")
    assert sorted(p.name for p in (root / "market=XNYS").iterdir()) == [
        "session=2026-03-05.parquet",
        "session=2026-03-06.parquet",
    ]  # no temporary file left behind

    con.execute(health_catalog_sql(root))
    cols = [d[0] for d in con.execute("SELECT * FROM data_health LIMIT 0").description]
    assert cols == [
        "market",
        "session",
        "gate",
        "passed",
        "blocking",
        "summary",
        "counts_json",
        "evaluated_at",
        "run_id",
    ]
    unhealthy = con.execute(
        "SELECT market, session, gate FROM data_health WHERE NOT passed AND blocking ORDER BY gate"
    ).fetchall()
    assert unhealthy == [
        ("XNYS", dt.date(2026, 3, 6), "negative_volume"),
        ("XNYS", dt.date(2026, 3, 6), "schema"),
        ("XNYS", dt.date(2026, 3, 6), "volume_trades"),  # needs volume: not evaluated = failed
    ]
    counts = json.loads(
        con.execute(
            "SELECT counts_json FROM data_health WHERE market='XNYS' AND session='2026-03-05' AND gate='completeness'"
        ).fetchone()[0]
    )
    assert counts["expected"] == 24 * 390 and counts["coverage"] == 1.0

    # re-running a partition replaces its verdicts
    write_health(root, "XNYS", dt.date(2026, 3, 6), clean, AT + dt.timedelta(hours=1), "run-4")
    xnys = read_health(root, "XNYS")
    assert xnys.height == 2 * len(GATE_NAMES) and xnys["passed"].all()
    assert set(xnys.filter(pl.col("session") == dt.date(2026, 3, 6))["run_id"]) == {"run-4"}
    assert read_health(root).height == 3 * len(GATE_NAMES)


def test_health_catalog_rejects_unsafe_names_and_naive_times(tmp_path):
    results = run_gate_suite(clean_session("XNYS", DAY), XNYS, DAY)
    with pytest.raises(HealthCatalogError, match="market id"):
        write_health(tmp_path, "../XNYS", DAY, results, AT, "r")
    with pytest.raises(HealthCatalogError, match="time zone"):
        write_health(tmp_path, "XNYS", DAY, results, dt.datetime(2026, 3, 5), "r")
