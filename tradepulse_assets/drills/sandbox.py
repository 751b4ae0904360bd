"""A drill's sandbox: where a replay may write, which state DB it uses, and how its messages are marked.

Why a sandbox is more than a temporary folder: code under a replay resolves some defaults from the process
environment (``$TRADEPULSE_HOME`` for reports, the audit trail and the health catalog; the state DB URL for the
CLI-side responder), and a replay runs in the caller's process. So for the duration of a replay every such
variable points into the sandbox, and the sandbox's own state DB says what it is:

* ``drill_mode`` = ``quiet`` (default: nothing leaves the sandbox; messages are recorded in the sandbox's
  outbox, marked ``[DRILL]``) or ``notify`` (``--notify``: real channels, still marked, with the drill
  PagerDuty routing key when one is configured);
* ``incident_id_prefix`` = ``DRILL-<replay id>``: incident ids unique across replays, never mistaken for
  production ones, even when two replays re-create the same day.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tradepulse_assets.incidents.notifications.config import DRILL_MODE_WATERMARK, NOTIFY, QUIET
from tradepulse_assets.incidents.store import INCIDENT_ID_PREFIX_WATERMARK
from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets.storage.state import StateDB

SANDBOXED_ENV = {
    "TRADEPULSE_HOME": "home",
    "TRADEPULSE_STATE_DB_URL": "state_db_url",
    "TRADEPULSE_OBJECT_STORE_URL": "object_store_url",
    "TRADEPULSE_VENDOR_SOURCE": "vendor_source",
}


def new_replay_id() -> str:
    return uuid.uuid4().hex[:10]


def prepare_drill_state(settings: Settings, *, replay_id: str, notify: bool = False) -> StateDB:
    """The sandbox's state DB, marked as a drill (quiet unless ``notify``) with its own incident-id space."""
    db = StateDB(settings.state_db_url)
    db.set_watermark(DRILL_MODE_WATERMARK, NOTIFY if notify else QUIET)
    db.set_watermark(INCIDENT_ID_PREFIX_WATERMARK, f"DRILL-{replay_id}")
    return db


@contextmanager
def sandbox_environment(settings: Settings) -> Iterator[None]:
    """Point the process-wide defaults at the sandbox while a replay runs; restore them afterwards."""
    saved = {name: os.environ.get(name) for name in SANDBOXED_ENV}
    os.environ.update({name: str(getattr(settings, attr)) for name, attr in SANDBOXED_ENV.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
