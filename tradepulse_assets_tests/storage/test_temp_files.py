"""An interrupted write leaves nothing that is ever read as data: the next write of the same object removes
what a killed writer left, and ``tradepulse-cli doctor`` sweeps the rest."""

import json
import os
import signal
import subprocess
import sys

from tradepulse_assets.cli.main import main
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.object_store import TMP_PREFIX, LocalObjectStore

WRITER = """
import os, sys, time
from tradepulse_assets.storage.object_store import LocalObjectStore
def killed_before_rename(*args, **kwargs):
    print("temporary file written", flush=True)
    time.sleep(600)
os.replace = killed_before_rename
LocalObjectStore(sys.argv[1]).put_bytes(sys.argv[2], b"half a partition" * 1000)
"""


def _killed_writer(store_root, key) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", WRITER, str(store_root), key]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"temporary file written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _leftovers(folder):
    return [p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_a_killed_write_is_never_listed_and_the_next_write_removes_it(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    key = lake.partition_key("staging", "XNYS", "2026-03-09")
    store.put_bytes(key, b"revision 1")
    _killed_writer(store.root, key)
    folder = store.path(key).parent
    assert len(_leftovers(folder)) == 1
    assert store.list_keys("") == [key] and lake.list_sessions(store, "staging", "XNYS") == [
        lake._session("2026-03-09")
    ]
    assert store.get_bytes(key) == b"revision 1"  # the old bytes, never a torn file
    store.put_bytes(key, b"revision 2")  # the next write of the same partition
    assert _leftovers(folder) == [] and store.get_bytes(key) == b"revision 2"


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    key = "lake/landing/market=XNYS/session=2026-03-09/part-0.parquet"
    folder = store.path(key).parent
    folder.mkdir(parents=True)
    live = folder / f"{TMP_PREFIX}part-0.parquet.{os.getppid()}.abcdefgh"  # our parent is alive
    live.write_bytes(b"being written")
    store.put_bytes(key, b"data")
    assert live.exists()


def test_doctor_removes_what_killed_writers_left(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("TRADEPULSE_HOME", str(home))
    monkeypatch.setenv("TRADEPULSE_OBJECT_STORE_URL", str(home / "store"))
    store = LocalObjectStore(home / "store")
    key = "lake/landing/market=XNYS/session=2026-03-10/part-0.parquet"  # a partition nobody writes again
    _killed_writer(store.root, key)
    assert main(["doctor", "--dry-run", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed["temporary_files"]) == 1 and listed["removed"] == 0
    assert main(["doctor"]) == 0
    assert "removed 1 temporary file(s)" in capsys.readouterr().out
    assert _leftovers(store.path(key).parent) == []
