"""``python -m tradepulse_assets.quality``: rewrite docs/quality-gates.md's gate table from the registry."""

import sys

from tradepulse_assets.quality.registry import DOC_PATH, doc_with_table

DOC_PATH.write_text(doc_with_table(DOC_PATH.read_text()))
sys.stdout.write(f"wrote the gate table of {DOC_PATH}\n")
