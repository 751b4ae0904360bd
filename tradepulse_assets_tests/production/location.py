"""The code location of the production test, rebuilt from the environment in every process.

The multiprocess and celery executors run each step in another Python process that must rebuild the job from
an importable pointer: ``dg.build_reconstructable_job(__name__, "job_from_env", (name, executor))``.
Building the definitions from the environment (and not importing ``tradepulse_assets.defs``, whose ``defs``
is fixed when the module is first imported) means the run orchestrator and every step worker see exactly the
profile the test exported: S3 object store and vendor, PostgreSQL state, ``TRADEPULSE_EXECUTOR`` (multiprocess
or celery).
"""

from pathlib import Path

import dagster as dg

from tradepulse_assets.defs.definitions import build_definitions
from tradepulse_assets.pipeline.settings import load_settings

MODULE = __name__
# Step workers start from a fresh interpreter that has no pytest rootdir on sys.path: point them at the checkout.
CHECKOUT = str(Path(__file__).resolve().parents[2])


def job_from_env(job_name: str, executor: str) -> dg.JobDefinition:
    """The job ``job_name`` of the definitions the current environment selects (``load_settings()``).

    ``executor`` is part of the pointer because Dagster keeps one rebuilt job per pointer in each process: a
    test on the celery executor must not be handed the multiprocess job an earlier test built, or the reverse.
    """
    settings = load_settings()
    assert settings.executor == executor, f"pointer for {executor}, environment says {settings.executor}"
    return build_definitions(settings=settings).resolve_job_def(job_name)


def reconstructable_job(job_name: str):
    """A pointer to ``job_name`` on the executor the environment selects, that step processes can rebuild."""
    return dg.build_reconstructable_job(
        MODULE,
        "job_from_env",
        reconstructable_args=(job_name, load_settings().executor),
        reconstructor_working_directory=CHECKOUT,
    )
