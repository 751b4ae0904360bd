"""Incidents: the runbook's incident engine (model, store, lifecycle, exit criteria, control plane,
reports, communications and notifications).

Plain Python over ``storage`` and ``markets``; Dagster sensors and ``tradepulse-cli`` drive it.
Most callers need only ``IncidentEngine`` (lifecycle) and, for consumers, ``ControlPlane.is_paused``.
Import submodules directly; this package does not import them eagerly, so loading the light
``communications`` module does not pull in the state database.
"""
