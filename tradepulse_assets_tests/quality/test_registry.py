"""The gate registry: one declaration per gate, every bar column covered, the docs table in sync, and the
gates for the optional columns (vwap, trade_count) and the universe."""

import ast
import dataclasses
import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.quality import (
    GATE_NAMES,
    GATES,
    GateConfig,
    check_trade_count,
    check_universe,
    check_volume_trades,
    check_vwap_range,
    config_for_market,
    gate_is_blocking,
    run_gate_suite,
)
from tradepulse_assets.quality import registry
from tradepulse_assets_tests.quality.synth import clean_session, utc

XNYS = calendar_for("XNYS", "XNYS")
DAY = dt.date(2026, 3, 5)
QUALITY_DIR = Path(registry.__file__).parent


def test_every_column_of_the_bar_schema_is_judged_by_a_gate_besides_schema():
    assert registry.uncovered_columns() == []
    for spec in GATES:
        assert set(spec.columns) <= set(registry.SCHEMA_COLUMNS), spec.name


def test_the_docs_table_is_the_one_rendered_from_the_registry():
    text = registry.DOC_PATH.read_text()
    assert registry.doc_with_table(text) == text, "run: python -m tradepulse_assets.quality"
    for spec in GATES:
        assert f"| `{spec.name}` |" in text


def test_names_are_unique_and_the_suite_runs_the_registry_in_order():
    assert len(set(GATE_NAMES)) == len(GATE_NAMES) == len(GATES)
    universe = load_registry().get("XNYS").symbols
    results = run_gate_suite(clean_session("XNYS", DAY), XNYS, DAY, expected_symbols=universe)
    assert [r.gate for r in results] == list(GATE_NAMES)
    assert [r.blocking for r in results] == [spec.blocking for spec in GATES]


def test_quality_modules_never_import_the_package_init():
    """The old quality/__init__ <-> suite cycle: submodules import each other directly."""
    for path in QUALITY_DIR.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "tradepulse_assets.quality", f"{path.name} imports the package __init__"
        assert "gates._" not in path.read_text(), f"{path.name} calls a private gate function"


def test_blocking_overrides_and_the_freshness_backfill_waiver():
    assert gate_is_blocking("vwap_range") and not gate_is_blocking("price_spikes")
    assert gate_is_blocking("price_spikes", GateConfig(blocking={"price_spikes": True}))
    spec = registry.gate_spec("freshness")
    late = registry.SuiteInputs(
        registry.PreparedBars(pl.DataFrame()), landed_at=utc(2026, 3, 5, 22), deadline=utc(2026, 3, 5, 21),
        is_backfill=True,
    )
    strict = GateConfig(blocking={"freshness": True})
    assert spec.run(late, strict).blocking is False
    assert spec.run(dataclasses.replace(late, is_backfill=False), strict).blocking is True
    with pytest.raises(KeyError, match="unknown quality gate"):
        registry.gate_spec("nope")


def _with(frame: pl.DataFrame, row: int, **values) -> pl.DataFrame:
    idx = pl.int_range(pl.len()) == row
    return frame.with_columns(
        pl.when(idx).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c)
        for c, v in values.items()
    )


@pytest.mark.parametrize("bad", [math.nan, -5.0, 1e30, math.inf])
def test_vwap_outside_low_high_fails_and_names_the_row(bad):
    frame = _with(clean_session("XNYS", DAY), 17, vwap=bad)
    r = check_vwap_range(frame)
    assert not r.passed and r.blocking and r.counts["rows_violating"] == 1
    assert r.evidence[0]["row"] == 17 and "vwap outside [low, high]" in r.summary


def test_vwap_null_by_contract_and_absent_column_pass():
    frame = _with(clean_session("XNYS", DAY), 3, vwap=None)
    assert check_vwap_range(frame).passed
    skipped = check_vwap_range(frame.drop("vwap"))
    assert skipped.passed and not skipped.evaluated


def test_negative_trade_count_fails():
    frame = _with(clean_session("XNYS", DAY), 5, trade_count=-1000)
    r = check_trade_count(frame)
    assert not r.passed and r.counts["negative"] == 1 and r.evidence[0]["trade_count"] == -1000
    assert check_trade_count(_with(frame, 5, trade_count=None)).passed


def test_volume_must_agree_with_trade_count():
    clean = clean_session("XNYS", DAY)
    assert check_volume_trades(clean).passed
    r = check_volume_trades(_with(clean, 2, trade_count=0))
    assert not r.passed and r.counts["volume_without_trades"] == 1
    r = check_volume_trades(_with(clean, 4, volume=0.0))
    assert not r.passed and r.counts["trades_without_volume"] == 1
    assert check_volume_trades(_with(clean, 4, volume=0.0, trade_count=0)).passed  # no trades, no volume


def test_unknown_symbol_follows_the_market_policy():
    registry_ = load_registry()
    xnys, crypto = registry_.get("XNYS"), registry_.get("CRYPTO")
    assert (xnys.unknown_symbols, crypto.unknown_symbols) == ("block", "promote_with_warning")
    frame = clean_session("XNYS", DAY)
    frame = pl.concat([frame, frame.head(1).with_columns(symbol=pl.lit("ZZZ9"))])
    blocked = check_universe(frame, xnys.symbols, config=config_for_market(xnys))
    assert not blocked.passed and blocked.blocking and blocked.severity == "ERROR"
    assert blocked.evidence == [{"symbol": "ZZZ9", "universe_change": "added"}] and "ZZZ9" in blocked.summary
    warned = check_universe(frame, xnys.symbols, config=config_for_market(crypto))
    assert not warned.passed and not warned.blocking and warned.severity == "WARN"
    assert check_universe(clean_session("XNYS", DAY), xnys.symbols).passed
