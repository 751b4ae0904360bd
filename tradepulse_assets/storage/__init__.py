"""Storage: the object store (local directory or S3), the Parquet lake layout, the audit log and home paths.

This layer imports only ``core`` and ``markets`` (``docs/architecture.md``); everything above writes keys through it, never paths, so
the embedded profile (files under ``$TRADEPULSE_HOME``) and the production profile (an S3 bucket) share one
code path. ``state.py`` (the state database) lives here too but is documented in its own module.
"""

from tradepulse_assets.storage.audit import AuditLog, AuditLogCorrupt, InvalidAuditEvent
from tradepulse_assets.storage.home import (
    AUDIT_LOG,
    BACKFILL_REPORTS,
    HEALTH_CATALOG,
    INCIDENT_REPORTS,
    InvalidIdentifier,
    backfill_report_dir,
    home_path,
    incident_report_dir,
    tradepulse_home,
    validate_identifier,
)
from tradepulse_assets.storage.object_store import (
    InvalidKey,
    InvalidTags,
    LocalObjectStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    object_store_from_url,
    validate_key,
)

__all__ = [
    "AUDIT_LOG",
    "BACKFILL_REPORTS",
    "HEALTH_CATALOG",
    "INCIDENT_REPORTS",
    "AuditLog",
    "AuditLogCorrupt",
    "InvalidAuditEvent",
    "InvalidIdentifier",
    "InvalidKey",
    "InvalidTags",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3ObjectStore",
    "StorageError",
    "backfill_report_dir",
    "home_path",
    "incident_report_dir",
    "object_store_from_url",
    "tradepulse_home",
    "validate_identifier",
    "validate_key",
]
