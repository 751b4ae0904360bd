"""Drills: the replay driver, chaos replays and their follow-ups.

They build definitions (a replay drives the code location's sensors and jobs on simulated time), so they sit
above ``defs/``: ``defs/`` never imports them, and the code location (``tradepulse_assets.location``) merges
the follow-up job and schedule in. A drill writes only inside its sandbox and sends nothing unless asked
(``sandbox.py``).
"""
