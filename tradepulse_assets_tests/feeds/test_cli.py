"""``tradepulse-cli vendor``: publish with a scenario, the catalogue, manifests for user files, serve."""

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys

import polars as pl

from tradepulse_assets.cli.main import main
from tradepulse_assets.feeds.connectors import DirectoryConnector, HttpConnector
from tradepulse_assets.feeds.manifest import write_bar_file


def test_publish_with_a_packaged_scenario_reports_json_and_writes_ground_truth(tmp_path, capsys):
    code = main(
        [
            "vendor",
            "publish",
            "--market",
            "XNYS",
            "--start",
            "2026-03-09",
            "--end",
            "2026-03-11",
            "--dest",
            str(tmp_path),
            "--symbols",
            "3",
            "--seed",
            "5",
            "--scenario",
            "corrupt_delivery",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sessions"] == 3 and out["published"] == 3 and out["scenarios"] == ["corrupt_delivery"]
    assert [r["damages"] for r in out["results"]] == [[], ["checksum_corruption"], ["truncated_file"]]
    truth = json.loads((tmp_path / "_ground_truth" / "XNYS" / "2026-03-10.json").read_text())
    assert truth["damages"][0]["gate"] == "landing_verification"
    assert DirectoryConnector(tmp_path).list_sessions("XNYS") == [
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 10),
        dt.date(2026, 3, 11),
    ]


def test_publish_errors_are_one_line_with_the_cause(tmp_path, capsys):
    assert (
        main(
            [
                "vendor",
                "publish",
                "--market",
                "XNYS",
                "--start",
                "2026-03-09",
                "--end",
                "2026-03-09",
                "--dest",
                str(tmp_path),
                "--scenario",
                "no-such-scenario",
            ]
        )
        == 2
    )
    assert "no-such-scenario" in capsys.readouterr().err
    assert (
        main(
            [
                "vendor",
                "publish",
                "--market",
                "MARS",
                "--start",
                "2026-03-09",
                "--end",
                "2026-03-09",
                "--dest",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "MARS" in capsys.readouterr().err


def test_scenarios_catalogue_as_json(capsys):
    assert main(["vendor", "scenarios", "--json"]) == 0
    kinds = {row["kind"] for row in json.loads(capsys.readouterr().out)}
    assert {"stall", "local_timestamps", "restatement", "checksum_corruption"} <= kinds


def _bars(n: int) -> pl.DataFrame:
    ts = [dt.datetime(2026, 3, 9, 13, 30 + i, tzinfo=dt.timezone.utc) for i in range(n)]
    return pl.DataFrame(
        {
            "symbol": ["ACME"] * n,
            "ts": ts,
            "open": [10.0] * n,
            "high": [11.0] * n,
            "low": [9.0] * n,
            "close": [10.5] * n,
            "volume": [100.0] * n,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def test_manifest_for_user_files_then_a_changed_file_is_a_new_revision(tmp_path, capsys):
    folder = tmp_path / "MYVENDOR" / "2026-03-09"
    folder.mkdir(parents=True)
    (folder / "part1.csv").write_bytes(write_bar_file("part1.csv", _bars(5)))
    (folder / "part2.parquet").write_bytes(write_bar_file("part2.parquet", _bars(3)))
    assert main(["vendor", "manifest", "--dir", str(folder), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["market"], first["session"], first["revision"], first["record_count"]) == (
        "MYVENDOR",
        "2026-03-09",
        1,
        8,
    )
    assert main(["vendor", "manifest", "--dir", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    (folder / "part1.csv").write_bytes(write_bar_file("part1.csv", _bars(6)))
    assert main(["vendor", "manifest", "--dir", str(folder), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["revision"] == 2 and second["record_count"] == 9
    assert second["previous_revisions"] == ["manifest.r1.json"] and (folder / "manifest.r1.json").is_file()
    (folder / "broken.parquet").write_bytes(b"not parquet")
    assert main(["vendor", "manifest", "--dir", str(folder)]) == 2
    assert "broken.parquet" in capsys.readouterr().err


def test_vendor_serve_subprocess_serves_a_published_drop(tmp_path):
    main(
        [
            "vendor",
            "publish",
            "--market",
            "XLON",
            "--start",
            "2026-03-30",
            "--end",
            "2026-03-30",
            "--dest",
            str(tmp_path),
            "--symbols",
            "2",
            "--json",
        ]
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradepulse_assets.cli.main",
            "vendor",
            "serve",
            "--root",
            str(tmp_path),
            "--port",
            str(port),
        ],
        stderr=subprocess.PIPE,
        env={**os.environ, "TRADEPULSE_VENDOR_TOKEN": "tok"},  # from the environment, never argv
    )
    try:
        assert b"serving" in proc.stderr.readline()
        conn = HttpConnector(f"http://127.0.0.1:{port}", "tok", timeout=5, retries=0)
        assert conn.list_sessions("XLON") == [dt.date(2026, 3, 30)]
        assert conn.read_manifest("XLON", dt.date(2026, 3, 30)).record_count == 2 * 510
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
