"""``$TRADEPULSE_HOME`` and the runbook's paths inside it.

Why one module: the runbook names its artefacts by relative path (incident timelines, backfill reports, the
audit trail, the health catalog). Writing those strings once keeps every component, the CLI and the docs
pointing at the same files. The relative paths are ``/``-separated strings so they serve as object-store keys
as well as paths under the home directory.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from tradepulse_assets.core.environment import read

__all__ = [
    "AUDIT_LOG",
    "BACKFILL_REPORTS",
    "DEFAULT_HOME",
    "HEALTH_CATALOG",
    "HOME_ENV",
    "INCIDENT_REPORTS",
    "InvalidIdentifier",
    "backfill_report_dir",
    "home_path",
    "incident_report_dir",
    "tradepulse_home",
    "validate_identifier",
]

HOME_ENV = "TRADEPULSE_HOME"
DEFAULT_HOME = "./var"

INCIDENT_REPORTS = "reports/incidents/data"
BACKFILL_REPORTS = "reports/backfill"
AUDIT_LOG = "observability/audit/ingestion_events.jsonl"
HEALTH_CATALOG = "observability/catalog/data_health"

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.-]+$")


class InvalidIdentifier(ValueError):
    """An id that would not be a single safe path segment / partition key."""


def validate_identifier(value: str, what: str) -> str:
    """Return ``value`` if it matches ``[A-Za-z0-9_.-]+`` and is not ``.``/``..``, else raise.

    The character set excludes ``/`` (path escape) and ``|`` (Dagster's multi-partition key separator).
    """
    if not isinstance(value, str) or not _IDENTIFIER.match(value) or value in (".", ".."):
        raise InvalidIdentifier(f"invalid {what} {value!r}: expected [A-Za-z0-9_.-]+ (not '.' or '..')")
    return value


def tradepulse_home(*, create: bool = True) -> Path:
    """The absolute home directory: ``$TRADEPULSE_HOME`` or ``./var``, created unless ``create=False``."""
    home = Path(read(HOME_ENV)).expanduser().resolve()
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home


def incident_report_dir(opened: date, incident_id: str) -> str:
    """``reports/incidents/data/<date>-<id>`` (no trailing slash): ``timeline.md``, ``gap.csv``."""
    day = opened.date() if isinstance(opened, datetime) else opened
    return f"{INCIDENT_REPORTS}/{day.isoformat()}-{validate_identifier(incident_id, 'incident id')}"


def backfill_report_dir(incident_id: str) -> str:
    """``reports/backfill/<incident_id>`` (without trailing slash)."""
    return f"{BACKFILL_REPORTS}/{validate_identifier(incident_id, 'incident id')}"


def home_path(relative: str, home: Path | None = None) -> Path:
    """``relative`` (one of the paths above) under ``home`` (default :func:`tradepulse_home`)."""
    if relative.startswith("/") or ".." in relative.split("/"):
        raise ValueError(f"runbook paths are relative to the home directory, got {relative!r}")
    return (home if home is not None else tradepulse_home()).joinpath(*relative.split("/"))
