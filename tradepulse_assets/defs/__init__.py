"""Dagster wiring over the domain layers: assets, checks, sensors, jobs, resources and ``build_definitions``.

The code location object itself is ``tradepulse_assets.location.defs`` (it also merges the drills in).
"""
