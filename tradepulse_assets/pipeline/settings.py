"""Profile selection from the environment: the one switch between embedded default and production.

| variable | embedded default | production example |
| --- | --- | --- |
| ``TRADEPULSE_HOME`` | ``./var`` | a shared volume for reports and the audit trail |
| ``TRADEPULSE_OBJECT_STORE_URL`` | ``$TRADEPULSE_HOME/store`` | ``s3://tradepulse-data`` |
| ``TRADEPULSE_S3_ENDPOINT_URL`` | unset (AWS) | ``http://minio:9000`` or any S3 endpoint |
| ``TRADEPULSE_STATE_DB_URL`` | ``sqlite:///$TRADEPULSE_HOME/state/state.db`` | ``postgresql://...`` |
| ``TRADEPULSE_VENDOR_SOURCE`` | ``$TRADEPULSE_HOME/vendor`` (simulator drop) | dir, ``s3://...`` or ``https://...`` |
| ``TRADEPULSE_VENDOR_TOKEN`` | unset | bearer token of the HTTP vendor API |
| ``TRADEPULSE_CLOCK`` | ``system`` | ``system`` (``simulated:<iso>:<speed>`` for replays) |
| ``TRADEPULSE_EXECUTOR`` | ``in_process`` | ``multiprocess`` |
| ``TRADEPULSE_LAG_LOOKBACK_SESSIONS`` | ``3`` | how many closed sessions the lag sensors watch |
"""

import os
from dataclasses import dataclass

from tradepulse_assets.storage.home import tradepulse_home
from tradepulse_assets.storage.state import default_state_url


@dataclass(frozen=True)
class Settings:
    home: str
    object_store_url: str
    s3_endpoint_url: str | None
    state_db_url: str
    vendor_source: str
    clock: str
    executor: str
    lag_lookback_sessions: int = 3

    @property
    def outbox_path(self) -> str:
        return os.path.join(self.home, "observability", "notifications", "outbox.jsonl")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = str(tradepulse_home())
    return Settings(
        home=home,
        object_store_url=env.get("TRADEPULSE_OBJECT_STORE_URL") or os.path.join(home, "store"),
        s3_endpoint_url=env.get("TRADEPULSE_S3_ENDPOINT_URL") or None,
        state_db_url=env.get("TRADEPULSE_STATE_DB_URL") or default_state_url(),
        vendor_source=env.get("TRADEPULSE_VENDOR_SOURCE") or os.path.join(home, "vendor"),
        clock=env.get("TRADEPULSE_CLOCK") or "system",
        executor=env.get("TRADEPULSE_EXECUTOR") or "in_process",
        lag_lookback_sessions=int(env.get("TRADEPULSE_LAG_LOOKBACK_SESSIONS") or 3),
    )
