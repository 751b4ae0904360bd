"""Profile selection from the environment: the one switch between embedded default and production.

| variable | embedded default | production example |
| --- | --- | --- |
| ``TRADEPULSE_HOME`` | ``./var`` | a per-machine cache (reports and catalog: the bucket; audit: state DB) |
| ``TRADEPULSE_OBJECT_STORE_URL`` | ``$TRADEPULSE_HOME/store`` | ``s3://tradepulse-data`` |
| ``TRADEPULSE_S3_ENDPOINT_URL`` | unset (AWS) | ``http://minio:9000`` or any S3 endpoint |
| ``TRADEPULSE_STATE_DB_URL`` | ``sqlite:///$TRADEPULSE_HOME/state/state.db`` | ``postgresql://...`` |
| ``TRADEPULSE_VENDOR_SOURCE`` | ``$TRADEPULSE_HOME/vendor`` (simulator drop) | dir, ``s3://...`` or ``https://...`` |
| ``TRADEPULSE_VENDOR_TOKEN`` | unset | bearer token of the HTTP vendor API |
| ``TRADEPULSE_CLOCK`` | ``system`` | ``system`` (``simulated:<iso>:<speed>`` for replays) |
| ``TRADEPULSE_EXECUTOR`` | ``in_process`` | ``multiprocess``, or ``celery`` (steps on Celery workers) |
| ``TRADEPULSE_CELERY_BROKER_URL`` | unset | ``redis://broker:6379/0`` (with ``celery``) |
| ``TRADEPULSE_LAG_LOOKBACK_SESSIONS`` | ``3`` | how many closed sessions the lag sensors watch |
| ``TRADEPULSE_SENSOR_INTERVAL_SECONDS`` | unset (15-30 s per sensor) | minimum seconds between ticks of every sensor |

Dagster resources get these settings as ``EnvVar``s when they came from the environment
(``defs/definitions.py``), so resource config shown in the UI names variables and never holds a secret.
"""

import os
from dataclasses import dataclass, field

from tradepulse_assets.core.environment import is_set, read
from tradepulse_assets.core.io import S3Settings
from tradepulse_assets.storage.home import tradepulse_home
from tradepulse_assets.storage.state import default_state_url

#: Each setting and the environment variable it is read from: the one place configuration is read.
ENVIRONMENT_VARIABLES = {
    "object_store_url": "TRADEPULSE_OBJECT_STORE_URL",
    "s3_endpoint_url": "TRADEPULSE_S3_ENDPOINT_URL",
    "state_db_url": "TRADEPULSE_STATE_DB_URL",
    "vendor_source": "TRADEPULSE_VENDOR_SOURCE",
    "vendor_token": "TRADEPULSE_VENDOR_TOKEN",
    "clock": "TRADEPULSE_CLOCK",
    "executor": "TRADEPULSE_EXECUTOR",
    "celery_broker_url": "TRADEPULSE_CELERY_BROKER_URL",
    "lag_lookback_sessions": "TRADEPULSE_LAG_LOOKBACK_SESSIONS",
    "sensor_interval_seconds": "TRADEPULSE_SENSOR_INTERVAL_SECONDS",
}


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
    #: Minimum seconds between two ticks of every sensor (``None``: each sensor's own 15-30 s). A drill on
    #: stepped time sets a few seconds so the daemon reacts to each step quickly.
    sensor_interval_seconds: int | None = None
    vendor_token: str | None = field(default=None, repr=False)
    #: Broker (and result backend) of the celery executor; may hold a password, hence no repr.
    celery_broker_url: str | None = field(default=None, repr=False)
    #: Settings whose value this process read from its environment. Dagster resources take those as
    #: ``EnvVar``s, so the UI shows the variable's name, never a PostgreSQL password or a token.
    from_environment: frozenset[str] = frozenset()

    @property
    def s3(self) -> S3Settings:
        """S3 client settings for the object store and an S3 vendor drop (credentials: AWS default chain)."""
        return S3Settings(endpoint_url=self.s3_endpoint_url)

    @property
    def outbox_path(self) -> str:
        return os.path.join(self.home, "observability", "notifications", "outbox.jsonl")

    @classmethod
    def embedded(
        cls, home: str | os.PathLike[str], *, vendor_source: str | os.PathLike[str], **overrides
    ) -> "Settings":
        """The embedded profile rooted at ``home`` (local store, SQLite state DB) whatever the environment
        says: a drill's sandbox or a test's platform. ``overrides`` replace any field (e.g. the clock)."""
        root = os.fspath(home)
        values = dict(
            home=root,
            object_store_url=os.path.join(root, "store"),
            s3_endpoint_url=None,
            state_db_url=f"sqlite:///{os.path.join(root, 'state.db')}",
            vendor_source=os.fspath(vendor_source),
            clock="system",
            executor="in_process",
        )
        return cls(**{**values, **overrides})

    def environment_variable(self, name: str) -> str | None:
        """The variable ``name`` was read from, when it was read from this process's environment."""
        return ENVIRONMENT_VARIABLES[name] if name in self.from_environment else None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    home = str(tradepulse_home())
    given = {name: read(var, environ) for name, var in ENVIRONMENT_VARIABLES.items()}
    # Only what this process's environment holds can be an EnvVar (a dict passed in may differ from it).
    from_environment = frozenset(
        name for name, var in ENVIRONMENT_VARIABLES.items()
        if is_set(var) and read(var) == given[name]
    )
    return Settings(
        home=home,
        object_store_url=given["object_store_url"] or os.path.join(home, "store"),
        s3_endpoint_url=given["s3_endpoint_url"],
        state_db_url=given["state_db_url"] or default_state_url(),
        vendor_source=given["vendor_source"] or os.path.join(home, "vendor"),
        clock=given["clock"],
        executor=given["executor"],
        lag_lookback_sessions=int(given["lag_lookback_sessions"]),
        sensor_interval_seconds=int(given["sensor_interval_seconds"]) if given["sensor_interval_seconds"] else None,
        vendor_token=given["vendor_token"],
        celery_broker_url=given["celery_broker_url"],
        from_environment=from_environment,
    )
