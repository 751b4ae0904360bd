"""The hostile deliveries of issue #11, each as a mutation of a clean published XNYS session.

Every case says which gate must stop it and a fragment of the one line that names the fault. The clean session
is revision 1; each mutation publishes revision 2 of the same session (a restatement gone wrong), so the tests
can check that production, holding revision 1, is left byte for byte as it was.
"""

import datetime as dt
import gzip
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tradepulse_assets.feeds.manifest import describe_file, parse_bar_file, sha256_hex, write_bar_file

MARKET = "XNYS"
SESSION = dt.date(2026, 3, 9)
BARS = "bars.parquet"


@dataclass(frozen=True)
class Case:
    name: str
    gate: str  # the gate that must block it
    fragment: str  # part of the gate's one-line summary
    mutate: Callable[[Path], None]  # takes the session folder of the drop


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder: Path, doc: dict) -> None:
    doc["revision"] = 2
    doc["record_count"] = sum(f["record_count"] for f in doc["files"])
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2))


def _frame(folder: Path) -> pl.DataFrame:
    return parse_bar_file(BARS, (folder / BARS).read_bytes())


def _republish(folder: Path, frame: pl.DataFrame) -> None:
    """The frame as the session's only file, with an honest manifest: the fault is in the data only."""
    data = write_bar_file(BARS, frame)
    (folder / BARS).write_bytes(data)
    entry = describe_file(BARS, data)
    _write_manifest(folder, {**_manifest(folder), "files": [entry.__dict__]})


def _set(row: int, **values) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        frame = _frame(folder)
        hit = pl.int_range(pl.len()) == row
        _republish(folder, frame.with_columns(
            pl.when(hit).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c)
            for c, v in values.items()
        ))
    return mutate


def _frame_change(change: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    return lambda folder: _republish(folder, change(_frame(folder)))


def _manifest_change(change: Callable[[dict, Path], None]) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        doc = _manifest(folder)
        change(doc, folder)
        _write_manifest(folder, doc)
    return mutate


def _symlinked_file(folder: Path) -> None:
    outside = folder.parents[2] / "outside-the-drop.parquet"
    shutil.copy(folder / BARS, outside)  # the very same bytes: only where they live is wrong
    (folder / BARS).unlink()
    (folder / BARS).symlink_to(outside)


def _symlinked_session(folder: Path) -> None:
    outside = folder.parents[2] / "outside-session"
    shutil.move(folder, outside)
    folder.symlink_to(outside, target_is_directory=True)


def _extra_file(name: str, data: bytes | None):
    def change(doc: dict, folder: Path) -> None:
        if data is not None:
            (folder / name).write_bytes(data)
        body = data if data is not None else b"never delivered"
        doc["files"].append({"name": name, "size": len(body), "sha256": sha256_hex(body), "record_count": 1})
    return change


def _truncate(folder: Path) -> None:
    data = (folder / BARS).read_bytes()
    (folder / BARS).write_bytes(data[: len(data) // 2])


def _wrong_record_count(doc: dict, folder: Path) -> None:
    doc["files"][0]["record_count"] += 1


def _gzip_bomb(folder: Path) -> None:
    bomb = gzip.compress(b"0" * (80 * 1024 * 1024), compresslevel=9, mtime=0)
    (folder / BARS).unlink()
    (folder / "bars.csv.gz").write_bytes(bomb)
    doc = _manifest(folder)
    entry = {"name": "bars.csv.gz", "size": len(bomb), "sha256": sha256_hex(bomb), "record_count": 9360}
    doc["files"] = [entry]
    _write_manifest(folder, doc)


def _malformed_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"market": "XNYS", "files": [ {"name": "bars.parquet", ')


def _unknown_symbol(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame, frame.filter(pl.col("symbol") == "NY000").with_columns(symbol=pl.lit("ZZ999"))])


def _out_of_session(frame: pl.DataFrame) -> pl.DataFrame:
    before_open = pl.lit(dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)).dt.cast_time_unit("us")
    return pl.concat([frame, frame.head(1).with_columns(ts=before_open)])


CASES: tuple[Case, ...] = (
    # Holes the hostile test found (issue #11).
    Case("vwap_nan", "vwap_range", "vwap outside [low, high]", _set(5, vwap=math.nan)),
    Case("vwap_negative", "vwap_range", "vwap outside [low, high]", _set(5, vwap=-5.0)),
    Case("vwap_huge", "vwap_range", "vwap outside [low, high]", _set(5, vwap=1e30)),
    Case("trade_count_negative", "trade_count", "negative trade_count", _set(7, trade_count=-1000)),
    Case("volume_without_trades", "volume_trades", "volume without trades", _set(9, trade_count=0)),
    Case("unknown_symbol", "universe", "ZZ999", _frame_change(_unknown_symbol)),
    Case("symlinked_file", "landing_verification", "it is a symbolic link", _symlinked_file),
    Case("symlinked_session", "landing_verification", "it is a symbolic link", _symlinked_session),
    Case("empty_file_list", "landing_verification", "lists no files",
         _manifest_change(lambda doc, folder: doc.update(files=[]))),
    Case("file_missing_from_drop", "landing_verification", "not in the drop",
         _manifest_change(_extra_file("bars-2.parquet", None))),
    Case("traversal_name", "landing_verification", "path traversal",
         _manifest_change(_extra_file("../../../etc/passwd", None))),
    Case("unknown_suffix", "landing_verification", "unknown suffix",
         _manifest_change(_extra_file("bars.exe", b"MZ\x90\x00"))),
    Case("malformed_manifest", "landing_verification", "not valid JSON", _malformed_manifest),
    # What already held, so it keeps holding.
    Case("truncated_file", "landing_verification", "manifest says", _truncate),
    Case("wrong_schema", "schema", "schema failed", _frame_change(lambda f: f.rename({"close": "last"}))),
    Case("nan_price", "ohlc_consistency", "violate OHLC", _set(11, close=math.nan)),
    Case("negative_price", "ohlc_consistency", "violate OHLC", _set(11, open=-1.0)),
    Case("high_below_low", "ohlc_consistency", "violate OHLC", _set(13, high=1.0, low=2.0)),
    Case("duplicate_bars", "duplicate_bars", "extra rows repeat",
         _frame_change(lambda f: pl.concat([f, f.slice(40, 3)]))),
    Case("out_of_session_bar", "calendar_alignment", "outside the expected minutes",
         _frame_change(_out_of_session)),
    Case("local_time_labelled_utc", "calendar_alignment", "local-time stamps",
         _frame_change(lambda f: f.with_columns(pl.col("ts") - pl.duration(hours=4)))),
    Case("manifest_record_count_mismatch", "landing_verification", "records, manifest says",
         _manifest_change(_wrong_record_count)),
    Case("gzip_bomb", "landing_verification", "decompression bomb", _gzip_bomb),
)
