"""TradePulse Assets: the market-data incident runbook as a Dagster code location.

The Dagster definitions live in ``tradepulse_assets.defs``; the layers and their import rules are in
``docs/architecture.md``.
"""
