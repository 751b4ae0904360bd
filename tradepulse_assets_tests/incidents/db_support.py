"""State-DB targets for tests: SQLite in a temp dir, and PostgreSQL when ``TRADEPULSE_TEST_PG_URL`` is set.

Each PostgreSQL test gets a fresh schema (dropped afterwards) so runs never see each other's rows.
Without a server the PostgreSQL variants skip, unless ``TRADEPULSE_REQUIRE_SERVICES=1`` (CI), where
they fail: a CI run must not pass by skipping the production profile.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

PG_ENV = "TRADEPULSE_TEST_PG_URL"
REQUIRE_ENV = "TRADEPULSE_REQUIRE_SERVICES"
BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))


@dataclass(frozen=True)
class DBTarget:
    """What a (possibly spawned) process needs to open the same database: the URL with its schema."""

    url: str
    dialect: str


def pg_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        reason = f"PostgreSQL tests need {PG_ENV} (source .ci/services.sh to start a throwaway server)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 forbids skipping them")
        pytest.skip(reason)
    return url


@contextmanager
def db_target(backend: str, tmp_path) -> Iterator[DBTarget]:
    if backend == "sqlite":
        yield DBTarget(f"sqlite:///{tmp_path / 'state' / 'state.db'}", "sqlite")
        return
    import psycopg2

    base = pg_base_url()
    schema = f"tp_test_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in base else "?"
    try:
        yield DBTarget(f"{base}{sep}schema={schema}", "postgresql")
    finally:
        conn = psycopg2.connect(base)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()
