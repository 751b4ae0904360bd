"""The operator's console on start: loading the code location prints no warnings (issue #15)."""

import subprocess
import sys
from pathlib import Path

LOAD = "import tradepulse_assets.location as location; location.defs.get_repository_def()"


def test_loading_the_code_location_warns_nothing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TRADEPULSE_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-W", "error", "-c", LOAD], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[-3000:]
