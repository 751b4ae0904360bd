"""The executor of every job, chosen by ``TRADEPULSE_EXECUTOR`` (docs/production.md).

- ``in_process`` (the embedded default): every step in the run worker's process; the cheapest on 2 cores.
- ``multiprocess``: every step in its own process on the run worker's machine.
- ``celery``: every step is a task on a Celery broker (``TRADEPULSE_CELERY_BROKER_URL``, also the result
  backend), executed by whichever worker takes it, on any machine. Workers rebuild the job from its code
  pointer and reach the run through the instance (PostgreSQL); steps hand data to each other only through the
  object store and the state DB, so workers share no disk with the daemon or with each other.
"""

import dagster as dg

from tradepulse_assets.pipeline.settings import Settings

# Step processes preload the code location once (forkserver) instead of re-importing polars, numba and
# Dagster per step: measured 47 s -> 8-16 s for one session on 2 cores.
MULTIPROCESS_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["tradepulse_assets.defs.definitions"]}}}
)
#: The queue dagster-celery routes step tasks to; workers listen on it (``celery worker -Q dagster``).
CELERY_QUEUE = "dagster"
EXECUTORS = ("in_process", "multiprocess", "celery")


class ExecutorNotConfigured(ValueError):
    """``TRADEPULSE_EXECUTOR`` names an executor that is unknown or lacks its settings."""


def celery_executor(settings: Settings) -> dg.ExecutorDefinition:
    """dagster-celery's executor on the configured broker, which also stores the step results."""
    if not settings.celery_broker_url:
        raise ExecutorNotConfigured(
            "TRADEPULSE_EXECUTOR=celery needs TRADEPULSE_CELERY_BROKER_URL (redis://...)"
        )
    # The optional `celery` extra: imported only by the profile that uses it.
    from dagster_celery import celery_executor as dagster_celery_executor

    variable = settings.environment_variable("celery_broker_url")
    # From the environment the run config names the variable, never the URL (it may hold a password).
    broker = {"env": variable} if variable else settings.celery_broker_url
    return dagster_celery_executor.configured({"broker": broker, "backend": broker})


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    if settings.executor == "celery":
        return celery_executor(settings)
    if settings.executor == "multiprocess":
        return MULTIPROCESS_EXECUTOR
    if settings.executor == "in_process":
        return dg.in_process_executor
    raise ExecutorNotConfigured(
        f"TRADEPULSE_EXECUTOR={settings.executor!r}: expected one of {', '.join(EXECUTORS)}"
    )
