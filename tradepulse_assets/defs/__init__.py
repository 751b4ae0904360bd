"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from tradepulse_assets.defs.definitions import build_definitions

defs = build_definitions()
