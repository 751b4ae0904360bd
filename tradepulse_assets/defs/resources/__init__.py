"""Dagster resources: thin ``ConfigurableResource`` shells over the domain objects, one file each.

Each is configured from the environment (see ``settings.py``) so the same code runs on the embedded
default and on the production profile.
"""

from tradepulse_assets.defs.resources.clock import ClockResource
from tradepulse_assets.defs.resources.notifications import NotificationsResource
from tradepulse_assets.defs.resources.object_store import ObjectStoreResource
from tradepulse_assets.defs.resources.state import StateResource
from tradepulse_assets.defs.resources.vendor import VendorResource

__all__ = ["ClockResource", "NotificationsResource", "ObjectStoreResource", "StateResource", "VendorResource"]
