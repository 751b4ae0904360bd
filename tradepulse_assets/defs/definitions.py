"""All definitions assembled in one place: per-market assets, checks, jobs and sensors; shared resources."""

import warnings

import dagster as dg

from tradepulse_assets.defs.assets.bars import build_bar_assets
from tradepulse_assets.defs.assets.features import build_feature_assets
from tradepulse_assets.defs.assets.quarantine import quarantine_batches
from tradepulse_assets.defs.assets.vendor_manifests import vendor_manifests_spec
from tradepulse_assets.defs.executors import executor_for
from tradepulse_assets.defs.jobs import build_ingest_job, quarantine_job
from tradepulse_assets.defs.review import incident_review_job, incident_review_schedule
from tradepulse_assets.defs.sensors.catchup import build_catchup_sensor, build_consumer_job
from tradepulse_assets.defs.sensors.exit_criteria import DASHBOARD_SPEC, build_exit_criteria_sensor
from tradepulse_assets.defs.sensors.lag import build_lag_sensor, lag_asset_spec
from tradepulse_assets.defs.sensors.notification_delivery import (
    build_notification_delivery_sensor,
    deliver_notifications_job,
)
from tradepulse_assets.defs.sensors.publication import build_publication_sensor
from tradepulse_assets.defs.sensors.quality_failure import build_quality_failure_sensor
from tradepulse_assets.defs.sensors.vendor_availability import build_vendor_availability_sensor
from tradepulse_assets.defs.resources import (
    ClockResource,
    NotificationsResource,
    ObjectStoreResource,
    StateResource,
    VendorResource,
)
from tradepulse_assets.feeds.sources import validate_vendors
from tradepulse_assets.pipeline.settings import Settings, load_settings
from tradepulse_assets.markets import MarketRegistry, load_registry

# Dagster 1.13.27 rebuilds every sensor with ``owners=[]`` when it attaches resources to the sensors' jobs, which
# warns "Parameter `owners` ... is currently in beta" on every start although no sensor here sets owners.
warnings.filterwarnings(
    "ignore", message="Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning
)


def configured(settings: Settings, name: str):
    """A setting as resource config: ``EnvVar`` when it came from the environment (the UI then shows the
    variable's name, never its value, e.g. a PostgreSQL URL with its password), else the plain value."""
    variable = settings.environment_variable(name)
    return dg.EnvVar(variable) if variable else getattr(settings, name)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    def value(name: str):
        return configured(settings, name)

    return {
        "object_store": ObjectStoreResource(
            url=value("object_store_url"), s3_endpoint_url=value("s3_endpoint_url")
        ),
        "state": StateResource(url=value("state_db_url")),
        "vendor": VendorResource(
            source=value("vendor_source"),
            token=value("vendor_token"),
            s3_endpoint_url=value("s3_endpoint_url"),
        ),
        "clock": ClockResource(spec=value("clock")),
        "notifications": NotificationsResource(outbox_path=settings.outbox_path),
    }


def build_definitions(registry: MarketRegistry | None = None, settings: Settings | None = None) -> dg.Definitions:
    registry = registry or load_registry()
    validate_vendors(registry)  # a vendor table's typo stops the code location here, with the field named
    settings = settings or load_settings()
    assets: list = [quarantine_batches, DASHBOARD_SPEC]
    ingest_jobs = {market.market_id: build_ingest_job(market) for market in registry}
    consumer_jobs = [build_consumer_job(market) for market in registry]
    tick = settings.sensor_interval_seconds  # None: each sensor's own cadence
    sensors: list = [
        build_quality_failure_sensor(quarantine_job, tick),
        build_exit_criteria_sensor(registry, tick),
        build_catchup_sensor(registry, consumer_jobs, tick),
        build_notification_delivery_sensor(tick),
    ]
    for market in registry:
        assets += [vendor_manifests_spec(market), *build_bar_assets(market), *build_feature_assets(market),
                   lag_asset_spec(market)]
        job, lookback = ingest_jobs[market.market_id], settings.lag_lookback_sessions
        sensors += [build_publication_sensor(market, job, lookback, tick),
                    build_lag_sensor(market, job, lookback, tick), build_vendor_availability_sensor(market, tick)]
    return dg.Definitions(
        assets=assets,
        jobs=[*ingest_jobs.values(), *consumer_jobs, quarantine_job, deliver_notifications_job, incident_review_job],
        schedules=[incident_review_schedule],
        sensors=sensors,
        resources=build_resources(settings),
        executor=executor_for(settings),
    )
