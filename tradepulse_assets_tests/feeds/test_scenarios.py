"""Each fault kind does exactly the damage its ground truth records, checked on the published bytes."""

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from tradepulse_assets.markets import calendar_for
from tradepulse_assets.markets.bars import BarSchema
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.manifest import Manifest, verify_file
from tradepulse_assets.feeds.publisher import BATCH_LATENCY, Publisher, drop_store
from tradepulse_assets.feeds.scenarios import (
    KINDS,
    ScenarioError,
    catalogue,
    load_scenario,
    scenario_from_dict,
)
from tradepulse_assets.feeds.simulator import simulate_session

from .conftest import read_session

MARKET, SESSION, SEED, N = "XNYS", dt.date(2026, 3, 10), 11, 6
PRICES = ["open", "high", "low", "close"]


def publish(tmp_path, fault: dict, market=MARKET, session=SESSION, by_minute=False):
    scenario = scenario_from_dict(
        {"name": fault["kind"], "faults": [{"market": market, "session": str(session), **fault}]}, "test"
    )
    publisher = Publisher(drop_store(tmp_path), seed=SEED, n_symbols=N, scenarios=[scenario])
    result = publisher.publish_session(market, session, by_minute=by_minute)
    truth = json.loads((tmp_path / "_ground_truth" / market / f"{session}.json").read_text())
    damages = truth["damages"]
    assert [d["kind"] for d in damages] == [fault["kind"]]
    assert damages[0]["gate"] == KINDS[fault["kind"]]["gate"]
    return result, damages[0]


@pytest.fixture(scope="module")
def clean(registry):
    return simulate_session(registry.get(MARKET), SESSION, SEED, N)


def _minutes(frame):
    return sorted({t.strftime("%Y-%m-%dT%H:%MZ") for t in frame["ts"]})


def test_catalogue_lists_every_kind_with_a_gate_and_a_loadable_example():
    kinds = {entry["kind"] for entry in catalogue()}
    assert kinds == set(KINDS) and len(kinds) >= 15
    for entry in catalogue():
        scenario_from_dict({"faults": [entry["example"]]}, "catalogue")


def test_packaged_scenarios_load_by_name_and_unknown_kinds_are_named():
    assert {f.kind for f in load_scenario("dst_trap").faults} == {"local_timestamps"}
    with pytest.raises(ScenarioError, match="fault #0.*unknown fault kind 'meteor'"):
        scenario_from_dict({"faults": [{"kind": "meteor"}]}, "mine.yaml")
    with pytest.raises(ScenarioError, match="no packaged scenario"):
        load_scenario("does-not-exist")


def test_gap_window_removes_exactly_the_recorded_minutes(tmp_path, clean):
    _, damage = publish(tmp_path, {"kind": "gap_window", "at_minute": 60, "minutes": 15})
    got = read_session(tmp_path, MARKET, SESSION)
    missing = clean.join(got, on=["symbol", "ts"], how="anti")
    assert _minutes(missing) == damage["minutes"] and len(damage["minutes"]) == 15
    assert sorted(missing["symbol"].unique()) == damage["symbols"]
    assert missing.height == damage["details"]["removed_rows"] == 15 * N
    assert got.height == clean.height - missing.height


def test_duplicate_bars_are_exact_copies_at_the_recorded_rows(tmp_path, clean):
    _, damage = publish(tmp_path, {"kind": "duplicate_bars", "count": 7})
    got = read_session(tmp_path, MARKET, SESSION)
    rows = damage["rows"]
    assert len(rows) == 7 and got.height == clean.height + 7
    without = got.with_row_index("i").filter(~pl.col("i").is_in(rows)).drop("i")
    assert without.equals(clean)
    dup_keys = got.filter(got.select(["symbol", "ts"]).is_duplicated())
    assert dup_keys.height == 14  # each copy and its original
    assert (
        got[rows]
        .select("symbol", "ts")
        .sort("symbol", "ts")
        .equals(
            got.with_row_index("i")
            .filter(pl.col("i").is_in(rows))
            .select("symbol", "ts")
            .sort("symbol", "ts")
        )
    )


def test_out_of_order_bars_are_the_recorded_rows_and_nothing_else_moves(tmp_path, clean):
    _, damage = publish(tmp_path, {"kind": "out_of_order", "count": 5, "lag": 3})
    got = read_session(tmp_path, MARKET, SESSION)
    assert got.sort("ts", "symbol").equals(clean)  # same bars, different order
    late = got.with_row_index("i").with_columns(
        (pl.col("ts") < pl.col("ts").cum_max().over("symbol")).alias("late")
    )
    assert late.filter("late")["i"].to_list() == damage["rows"]
    assert len(damage["rows"]) == 5


@pytest.mark.parametrize(
    "fault, check",
    [
        (
            {"kind": "price_scale", "factor": 100, "symbols": 1, "at_minute": 200, "minutes": 10},
            lambda got, ref: np.allclose(got["close"] / ref["close"], 100.0),
        ),
        (
            {"kind": "ohlc_violation", "count": 5},
            lambda got, ref: got.select((pl.col("high") < pl.max_horizontal("open", "close")).all()).item(),
        ),
        (
            {"kind": "stale_prices", "symbols": 1, "minutes": 45},
            lambda got, ref: got["close"].n_unique() == 1 and (got["high"] == got["low"]).all(),
        ),
        ({"kind": "negative_volume", "count": 3}, lambda got, ref: (got["volume"] < 0).all()),
    ],
)
def test_value_faults_change_exactly_the_recorded_rows(tmp_path, clean, fault, check):
    _, damage = publish(tmp_path, fault)
    got = read_session(tmp_path, MARKET, SESSION)
    assert got.height == clean.height and got.select("symbol", "ts").equals(clean.select("symbol", "ts"))
    differs = np.flatnonzero(
        ~np.all(
            got.select(PRICES + ["volume"]).to_numpy() == clean.select(PRICES + ["volume"]).to_numpy(), axis=1
        )
    )
    rows = damage["rows"]
    # stale prices keep the first bar's close, so that bar may equal its clean self on every column but
    # open/high/low; every other kind changes every recorded row
    assert set(differs) <= set(rows) and len(rows) - len(differs) <= 1
    assert check(got[rows], clean[rows])
    assert sorted(got[rows]["symbol"].unique()) == damage["symbols"]
    if fault["kind"] == "ohlc_violation":
        broken = got.with_row_index("i").filter(pl.col("high") < pl.max_horizontal("open", "close"))
        assert broken["i"].to_list() == rows


def test_local_timestamps_shift_every_bar_by_the_new_york_offset(tmp_path, clean, registry):
    _, damage = publish(tmp_path, {"kind": "local_timestamps"}, session=dt.date(2026, 3, 9))
    clean_9 = simulate_session(registry.get(MARKET), dt.date(2026, 3, 9), SEED, N)
    got = read_session(tmp_path, MARKET, dt.date(2026, 3, 9))
    # After the US change New York is UTC-4: every label is 4 hours early, so the first 4 hours of labels
    # (09:30-13:29) fall before the open and the rest collide with real minutes carrying the wrong bars.
    assert (clean_9["ts"] - got["ts"]).unique().to_list() == [dt.timedelta(hours=4)]
    expected = set(calendar_for("XNYS", "XNYS").minutes(dt.date(2026, 3, 9)).tolist())
    labels = {t.replace(tzinfo=None) for t in got["ts"]}
    assert len(labels - expected) == 4 * 60 and min(labels).strftime("%H:%M") == "09:30"
    assert damage["details"]["time_zone"] == "America/New_York" and len(damage["minutes"]) == 390


@pytest.mark.parametrize("mode, column", [("rename", "volume"), ("missing", "close"), ("retype", "volume")])
def test_schema_mismatch_breaks_the_bar_schema_as_recorded(tmp_path, clean, mode, column):
    _, damage = publish(tmp_path, {"kind": "schema_mismatch", "mode": mode, "column": column, "to": "vol"})
    got = read_session(tmp_path, MARKET, SESSION)
    assert damage["details"]["mode"] == mode and damage["details"]["column"] == column
    if mode == "rename":
        assert "volume" not in got.columns and "vol" in got.columns
    elif mode == "missing":
        assert column not in got.columns
    else:
        assert got.schema[column] == pl.String
    with pytest.raises(Exception):
        BarSchema.validate(got)


@pytest.mark.parametrize("kind, check", [("checksum_corruption", "sha256"), ("truncated_file", "size")])
def test_byte_faults_are_caught_by_landing_verification_on_the_recorded_file(tmp_path, kind, check):
    _, damage = publish(tmp_path, {"kind": kind}, by_minute=True)
    conn = DirectoryConnector(tmp_path)
    manifest = conn.read_manifest(MARKET, SESSION)
    bad = {f.name for f in manifest.files if verify_file(f, conn.read_file(MARKET, SESSION, f.name))}
    assert bad == set(damage["files"]) and len(bad) == 1
    [name] = bad
    faults = verify_file(manifest.file(name), conn.read_file(MARKET, SESSION, name))
    assert check in {f.check for f in faults}
    if kind == "checksum_corruption":
        assert len(conn.read_file(MARKET, SESSION, name)) == manifest.file(name).size


@pytest.mark.parametrize(
    "kind, condition", [("condition_pending", "pending"), ("condition_degraded", "degraded")]
)
def test_condition_faults_set_the_manifest_condition(tmp_path, kind, condition):
    result, _ = publish(tmp_path, {"kind": kind})
    assert (
        DirectoryConnector(tmp_path).read_manifest(MARKET, SESSION).condition == condition == result.condition
    )


def test_delay_moves_published_at_by_the_recorded_minutes(tmp_path):
    _, damage = publish(tmp_path, {"kind": "delay", "minutes": 45})
    close = calendar_for("XNYS", "XNYS").hours(SESSION).close
    manifest = DirectoryConnector(tmp_path).read_manifest(MARKET, SESSION)
    assert manifest.published_at == close + BATCH_LATENCY + dt.timedelta(
        minutes=damage["details"]["delay_minutes"]
    )


def test_stall_leaves_a_batch_session_unpublished(tmp_path):
    result, damage = publish(tmp_path, {"kind": "stall", "at_minute": 120})
    assert result.status == "stalled"
    assert DirectoryConnector(tmp_path).read_manifest(MARKET, SESSION) is None
    assert len(damage["minutes"]) == 390 - 120


def test_restatement_is_a_new_revision_changing_exactly_the_recorded_rows(tmp_path, clean):
    result, damage = publish(tmp_path, {"kind": "restatement", "symbols": 2, "pct": 0.5, "minutes": 20})
    conn = DirectoryConnector(tmp_path)
    manifest = conn.read_manifest(MARKET, SESSION)
    assert manifest.revision == 2 == result.revision and manifest.previous_revisions == ("manifest.r1.json",)
    first = Manifest.from_json(conn.read_file(MARKET, SESSION, "manifest.r1.json"))
    assert read_session(tmp_path, MARKET, SESSION, first).equals(clean)  # revision 1 is still readable
    revised = read_session(tmp_path, MARKET, SESSION)
    changed = np.flatnonzero(revised["close"].to_numpy() != clean["close"].to_numpy())
    assert changed.tolist() == damage["rows"] and damage["revision"] == 2
    assert np.allclose(
        revised["close"].to_numpy()[changed] / clean["close"].to_numpy()[changed], 1.005, atol=1e-5
    )
    assert len(damage["symbols"]) == 2 and len(damage["minutes"]) == 20
    # publishing the same scenario again is idempotent: no third revision
    assert (
        Publisher(
            drop_store(tmp_path),
            seed=SEED,
            n_symbols=N,
            scenarios=[
                scenario_from_dict(
                    {
                        "faults": [
                            {
                                "kind": "restatement",
                                "market": MARKET,
                                "session": str(SESSION),
                                "symbols": 2,
                                "pct": 0.5,
                                "minutes": 20,
                            }
                        ]
                    },
                    "t",
                )
            ],
        )
        .publish_session(MARKET, SESSION)
        .status
        == "unchanged"
    )


def test_same_seed_same_damage(tmp_path):
    _, first = publish(tmp_path / "a", {"kind": "duplicate_bars", "count": 4})
    _, second = publish(tmp_path / "b", {"kind": "duplicate_bars", "count": 4})
    assert first == second
