"""The pipeline: one session's journey vendor -> landing -> staging -> production, without Dagster.

Why a layer of its own: landing needs the vendor's drop format, the lake and the audit log; staging needs
the quality gates. No domain layer may import all of them (``docs/architecture.md``), yet Dagster assets, the CLI
(``ingest backfill``, ``quality check``) and chaos replays must run exactly the same steps. So the steps
live here as plain functions, and ``defs/`` and ``cli/`` are thin callers. This layer may import every
domain layer; nothing but ``defs/`` and ``cli/`` imports it.
"""
