"""``tradepulse-cli sql``: DuckDB over the lake layers and the health catalog, on a local store and on S3."""

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from tradepulse_assets.cli.main import main
from tradepulse_assets.quality.catalog import write_health
from tradepulse_assets.quality.results import GateResult
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.home import HEALTH_CATALOG, home_path
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets_tests.storage.conftest import s3_store

SESSIONS = (dt.date(2026, 3, 9), dt.date(2026, 3, 10))
ROWS = {("XNYS", SESSIONS[0]): 6, ("XNYS", SESSIONS[1]): 4, ("XLON", SESSIONS[0]): 5}
AT = dt.datetime(2026, 3, 10, 21, 0, tzinfo=dt.UTC)


def bars(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + rng.standard_normal(rows).cumsum()
    return pl.DataFrame({"symbol": ["S1"] * rows, "close": close, "volume": rng.integers(1, 100, rows) * 1.0})


def fill(store) -> dict[tuple[str, dt.date], pl.DataFrame]:
    frames = {}
    for seed, ((market, session), rows) in enumerate(ROWS.items()):
        frames[market, session] = bars(rows, seed)
        lake.write_frame(store, "production", market, session, frames[market, session])
    lake.write_frame(store, lake.feature_layer("hurst"), "XNYS", SESSIONS[0], pl.DataFrame({"h": [0.5, 0.6]}))
    return frames


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["sql", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_counts_and_sums_over_the_lake_match_the_frames_written(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", str(tmp_path / "store"))
    frames = fill(LocalObjectStore(tmp_path / "store"))
    query = "SELECT market, session, count(*) AS n, sum(volume) AS v FROM production GROUP BY 1, 2 ORDER BY 1, 2"
    code, out, _ = run(capsys, query, "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["columns"] == ["market", "session", "n", "v"]
    expected = sorted((m, s.isoformat(), f.height, float(f["volume"].sum())) for (m, s), f in frames.items())
    assert [(r["market"], r["session"], r["n"], r["v"]) for r in payload["rows"]] == expected

    code, out, _ = run(capsys, "SELECT count(*) AS n FROM features_hurst", "--json")
    assert code == 0 and json.loads(out)["rows"] == [{"n": 2}]

    code, out, _ = run(capsys, "SELECT market FROM production", "--market", "XLON", "--max-rows", "2")
    assert code == 0
    assert "MARKET" in out.splitlines()[0] and out.count("XLON") == 2
    assert "3 more row(s)" in out and "XNYS" not in out


def test_the_health_catalog_is_a_view(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", str(tmp_path / "store"))
    results = [
        GateResult("completeness", False, True, "12 minutes missing"),
        GateResult("price_spikes", True, False, "no spike"),
    ]
    write_health(home_path(HEALTH_CATALOG, home), "XNYS", SESSIONS[1], results, AT, "run-1")
    code, out, _ = run(capsys, "SELECT market, session, gate FROM data_health WHERE NOT passed", "--json")
    assert code == 0
    assert json.loads(out)["rows"] == [{"market": "XNYS", "session": "2026-03-10", "gate": "completeness"}]


def test_an_s3_lake_is_queried_through_the_store(home, monkeypatch, capsys, s3_endpoint):
    store = s3_store(s3_endpoint)
    frames = fill(store)
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", f"s3://{store.bucket}")
    monkeypatch.setenv("TRADEPULSE_S3_ENDPOINT_URL", s3_endpoint.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_endpoint.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_endpoint.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_endpoint.region)
    code, out, _ = run(capsys, "SELECT market, count(*) AS n FROM production GROUP BY 1 ORDER BY 1", "--json")
    assert code == 0
    totals: dict[str, int] = {}
    for (market, _), frame in frames.items():
        totals[market] = totals.get(market, 0) + frame.height
    assert json.loads(out)["rows"] == [{"market": m, "n": n} for m, n in sorted(totals.items())]


def test_bad_sql_and_empty_layers_are_one_line_errors(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", str(tmp_path / "store"))
    code, _, err = run(capsys, "SELECT count(*) FROM staging")
    assert code == 2 and err.startswith("error: lake layer 'staging' has no partitions")
    fill(LocalObjectStore(tmp_path / "store"))
    code, _, err = run(capsys, "SELEKT 1 FROM production")
    assert code == 2 and err.splitlines()[0].startswith("error: sql: Parser Error")
    assert "views: landing, staging, production" in err
