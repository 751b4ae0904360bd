"""The code location of the production test, rebuilt from the environment in every process.

The multiprocess executor runs each step in a fresh Python process that must rebuild the job from an
importable pointer; ``dg.build_reconstructable_job(__name__, "job_from_env", (name,))`` is that pointer.
Building the definitions from the environment (and not importing ``tradepulse_assets.defs``, whose ``defs``
is fixed when the module is first imported) means the run orchestrator and every step worker see exactly the
profile the test exported: S3 object store and vendor, PostgreSQL state, ``TRADEPULSE_EXECUTOR=multiprocess``.
"""

from pathlib import Path

import dagster as dg

from tradepulse_assets.defs.definitions import build_definitions

MODULE = __name__
# Step workers start from a fresh interpreter that has no pytest rootdir on sys.path: point them at the checkout.
CHECKOUT = str(Path(__file__).resolve().parents[2])


def job_from_env(job_name: str) -> dg.JobDefinition:
    """The job ``job_name`` of the definitions the current environment selects (``load_settings()``)."""
    return build_definitions().resolve_job_def(job_name)


def reconstructable_job(job_name: str):
    """A pointer to ``job_name`` that step subprocesses can rebuild."""
    return dg.build_reconstructable_job(
        MODULE,
        "job_from_env",
        reconstructable_args=(job_name,),
        reconstructor_working_directory=CHECKOUT,
    )
