"""Market-data feeds: the drop format, connectors, the simulated vendor and its fault scenarios.

Kept separate from ingestion so the platform can be exercised end to end against a vendor it does not
control: the simulator publishes exactly what a real flat-file or streaming vendor would (manifests,
restatements, faults), and connectors read a drop the same way whether it sits in a directory, an S3
bucket or behind an HTTP API. This package imports only ``tradepulse_assets.markets``.
"""

from tradepulse_assets.feeds.manifest import (
    BarFileError,
    Fault,
    Manifest,
    ManifestError,
    ManifestFile,
    parse_bar_file,
    sha256_hex,
    verify_file,
)

__all__ = [
    "BarFileError",
    "Fault",
    "Manifest",
    "ManifestError",
    "ManifestFile",
    "parse_bar_file",
    "sha256_hex",
    "verify_file",
]
