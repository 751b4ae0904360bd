"""Drills sit above ``defs/``: building the platform's definitions never imports them (no cycle), and the
code location merges their follow-up job and schedule in."""

import subprocess
import sys

CHECK = """
import sys
import tradepulse_assets.defs.definitions as d
d.build_definitions()
leaked = sorted(m for m in sys.modules if m.startswith("tradepulse_assets.drills") or m == "tradepulse_assets.location")
assert not leaked, leaked
import tradepulse_assets.location as location
names = {j.name for j in location.defs.jobs} | {s.name for s in location.defs.schedules}
assert {"chaos_followups_job", "chaos_followups_daily", "deliver_notifications", "incident_review_weekly"} <= names
"""


def test_defs_never_import_drills_and_the_location_has_both():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
