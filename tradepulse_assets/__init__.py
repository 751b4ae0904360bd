"""TradePulse Assets: the market-data incident runbook as a Dagster code location.

The Dagster code location is ``tradepulse_assets.location`` (wiring in ``defs/``, drills in ``drills/``); the layers and their import rules are in
``docs/architecture.md``.
"""
