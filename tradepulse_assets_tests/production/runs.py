"""What the production tests share: the vendor they publish with and how they read a run's outcome back."""

import dagster as dg
from dagster._core.events import DagsterEventType

from tradepulse_assets.core.io import S3Settings
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario

SEED = 11


def publisher(url: str, endpoint_url: str | None, *faults: FaultSpec) -> Publisher:
    """The simulated vendor publishing to ``url`` (a directory or ``s3://...``): same seed, same bytes."""
    dest = drop_store(url, S3Settings(endpoint_url=endpoint_url))
    return Publisher(
        dest,
        seed=SEED,
        scenarios=(Scenario("production-test", "production test", faults),),
    )


def failure_summary(instance: dg.DagsterInstance, run_id: str) -> str:
    """The errors a failed run logged (step failures, run failure, engine errors), for assertion messages."""
    lines = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.event_type not in (
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.RUN_FAILURE,
            DagsterEventType.ENGINE_EVENT,
        ):
            continue
        error = getattr(event.event_specific_data, "error", None)
        if error is not None or event.event_type is not DagsterEventType.ENGINE_EVENT:
            detail = error.to_string() if error else ""
            lines.append(f"{event.event_type_value} {event.step_key or ''}: {event.message} {detail}")
    return "\n".join(lines)


def check_outcomes(instance: dg.DagsterInstance, run_id: str) -> dict[str, bool]:
    records = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    return {
        r.dagster_event.event_specific_data.check_name: r.dagster_event.event_specific_data.passed
        for r in records
    }


def s3_key(prefix_url: str, key: str) -> str:
    """The bucket key of ``key`` in a store or drop rooted at ``s3://bucket/prefix``."""
    prefix = prefix_url.split("/", 3)[3] if prefix_url.count("/") >= 3 else ""
    return f"{prefix}/{key}" if prefix else key
