"""The state database: incidents, control-plane toggles, lag samples, named locks and watermarks.

Why SQLAlchemy Core (and no ORM): every writer of this state lives in a different process (the Dagster
daemon's sensors, run workers, ``tradepulse-cli``), on SQLite in the embedded profile and on PostgreSQL in
production. SQLAlchemy (installed with Dagster) gives one URL format, one connection pool per process, one
schema definition and one statement for both dialects; this module adds only the guarantees the platform
needs on top:

- a write transaction that serialises against the other processes (SQLite: WAL + ``BEGIN IMMEDIATE`` +
  ``busy_timeout``; PostgreSQL: ordinary transactions, row locks, ``ON CONFLICT``), joined by nested calls,
- versioned migrations per schema (:meth:`StateDB.ensure_schema`): an append-only list of steps, each a
  Core ``Table``/``Index`` to create or a function of an Alembic ``Operations`` (add a column, an index...),
  recorded in ``schema_versions`` and safe when several processes start at once,
- a named lock (``Transaction.lock``) to serialise a read-then-write on a key (e.g. "is an incident already
  open for this fingerprint?") on both dialects,
- :func:`upsert`, the ``INSERT ... ON CONFLICT`` both dialects share.

Statements are Core expressions (``tx.run(...)``). Raw SQL strings with ``?`` placeholders
(``tx.execute(sql, params)``) and DDL strings in ``ensure_schema`` are still accepted for the stores that
have not moved to Core yet; on PostgreSQL their ``?`` are translated for psycopg2 outside quotes.

Timestamps are stored as fixed-width ISO-8601 UTC text (``to_iso``), so text order is time order.
"""

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url

from tradepulse_assets.core.environment import read
from tradepulse_assets.storage.home import tradepulse_home

STATE_DB_URL_ENV = "TRADEPULSE_STATE_DB_URL"
READ_ONLY = "tradepulse_read_only"  # execution option of connections that only read
SQLITE_BUSY_TIMEOUT_MS = 60_000

UTC = dt.timezone.utc

#: Tables of every schema; each store adds its own to this one ``MetaData``.
METADATA = sa.MetaData()


def text_columns(*names: str, **options: Any) -> list[sa.Column]:
    """Text columns sharing ``options`` (most state is text: ids, JSON, fixed-width ISO timestamps)."""
    return [sa.Column(name, sa.Text, **options) for name in names]


def autoid(name: str) -> sa.Column:
    """An auto-incrementing integer primary key (64-bit on PostgreSQL, the rowid on SQLite)."""
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


NOT_NULL = {"nullable": False}
KEY = {"primary_key": True}
SCHEMA_VERSIONS = sa.Table(
    "schema_versions", METADATA, *text_columns("name", **KEY), sa.Column("version", sa.Integer, **NOT_NULL),
    *text_columns("applied_at", **NOT_NULL),
)  # fmt: skip
NAMED_LOCKS = sa.Table(
    "named_locks", METADATA, *text_columns("name", **KEY), sa.Column("hits", sa.Integer, **NOT_NULL)
)
WATERMARKS = sa.Table(
    "watermarks", METADATA, *text_columns("name", **KEY), *text_columns("value", **NOT_NULL),
    *text_columns("updated_at"),
)  # fmt: skip
LAG_SAMPLES = sa.Table(
    "lag_samples", METADATA, *text_columns("market", "measured_at", **KEY),
    sa.Column("lag_seconds", sa.Float, **NOT_NULL), *text_columns("watermark"),
)  # fmt: skip

#: One migration step: a table or index to create, a function of Alembic ``Operations``, or (legacy) DDL text.
Migration = Union[sa.Table, sa.Index, Callable[[Any], None], str]

#: Version i of schema "state" is the first i steps (append only; never edit an applied step).
STATE_MIGRATIONS: tuple[Migration, ...] = (WATERMARKS, LAG_SAMPLES)


class StateDBError(RuntimeError):
    """The state database is unreachable, misconfigured or rejected a statement; names the URL."""


def to_iso(ts: dt.datetime) -> str:
    """Fixed-width UTC ISO text (``2026-11-30T12:00:00.000000+00:00``): text order is time order."""
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} is naive; the state database stores timezone-aware UTC only")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def default_state_url() -> str:
    """``$TRADEPULSE_STATE_DB_URL``, else SQLite at ``$TRADEPULSE_HOME/state/state.db``."""
    url = read(STATE_DB_URL_ENV)
    if url:
        return url
    return f"sqlite:///{tradepulse_home(create=False) / 'state' / 'state.db'}"


def upsert(
    dialect: str,
    table: sa.Table,
    values: Mapping[str, Any],
    keys: Sequence[str],
    update: Sequence[str] | Mapping[str, Any] | None = None,
    where: Callable[[Any], Any] | None = None,
):
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` on either dialect (``DO NOTHING`` when nothing to update).

    ``update`` names the columns taking the new row's value, or maps columns to expressions of
    ``excluded`` (pass a function for ``where``: it receives ``excluded`` and returns the condition).
    """
    insert = (pg_dialect.insert if dialect == "postgresql" else sqlite_dialect.insert)(table).values(**values)
    if not update:
        return insert.on_conflict_do_nothing(index_elements=list(keys))
    excluded = insert.excluded
    set_ = {c: excluded[c] for c in update} if not isinstance(update, Mapping) else dict(update)
    return insert.on_conflict_do_update(
        index_elements=list(keys), set_=set_, where=where(excluded) if where else None
    )


def qmark_to_pyformat(sql: str) -> str:
    """Translate ``?`` placeholders to psycopg2's ``%s`` (and escape literal ``%``), outside quotes."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _parse_url(url: str, schema: str | None) -> tuple[URL, str | None]:
    """The SQLAlchemy URL (psycopg2 for PostgreSQL) and the PostgreSQL schema (``?schema=`` or argument)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StateDBError(f"state DB URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StateDBError(
                f"state DB URL {url!r}: expected sqlite:///relative/path or sqlite:////absolute/path"
            )
        return parsed, None
    if backend in ("postgresql", "postgres"):
        query = dict(parsed.query)
        schema = schema or query.pop("schema", None)
        if schema and not schema.replace("_", "").isalnum():
            raise StateDBError(f"state DB URL {url!r}: schema {schema!r} must be letters, digits and '_'")
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the platform ships psycopg2.
        return parsed.set(drivername="postgresql+psycopg2", query=query), schema
    raise StateDBError(f"state DB URL {url!r}: unsupported scheme (use sqlite:/// or postgresql://)")


def _sqlite_engine(url: URL) -> sa.Engine:
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # a snapshot for reading, no write lock
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now: no deadlock on upgrade

    return engine


def _postgresql_engine(url: URL, schema: str | None) -> sa.Engine:
    engine = sa.create_engine(url, pool_pre_ping=True)
    if schema:

        @sa.event.listens_for(engine, "connect")
        def _search_path(dbapi_connection, _record) -> None:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            cursor = dbapi_connection.cursor()
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            cursor.execute(f'SET search_path TO "{schema}"')
            cursor.close()
            dbapi_connection.autocommit = autocommit

    return engine


class Transaction:
    """What ``StateDB.transaction()`` yields: Core statements via :meth:`run`, legacy ``?`` SQL via
    :meth:`execute`."""

    def __init__(self, db: "StateDB", connection: sa.Connection):
        self._db = db
        self._connection = connection
        self._result: sa.CursorResult | None = None

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def run(self, statement: sa.Executable) -> sa.CursorResult:
        """Execute a Core statement in this transaction."""
        try:
            return self._connection.execute(statement)
        except sa.exc.OperationalError as exc:
            raise self._db.error(exc, str(statement)) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "Transaction":
        """Legacy: a raw SQL string with ``?`` placeholders."""
        text = qmark_to_pyformat(sql) if self.dialect == "postgresql" else sql
        try:
            self._result = self._connection.exec_driver_sql(text, tuple(params))
        except sa.exc.OperationalError as exc:
            raise self._db.error(exc, sql) from exc
        return self

    @property
    def rowcount(self) -> int:
        return self._result.rowcount if self._result is not None else -1

    def fetchall(self) -> list[dict[str, Any]]:
        if self._result is None or not self._result.returns_rows:
            return []
        return [dict(row) for row in self._result.mappings().all()]

    def fetchone(self) -> dict[str, Any] | None:
        if self._result is None or not self._result.returns_rows:
            return None
        row = self._result.mappings().first()
        return None if row is None else dict(row)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def rows(self, statement: sa.Executable) -> list[dict[str, Any]]:
        """The rows of a Core ``select`` as dicts."""
        return [dict(row) for row in self.run(statement).mappings().all()]

    def lock(self, name: str) -> None:
        """Serialise this transaction against every other one locking ``name``, until commit.

        SQLite write transactions are already serial (``BEGIN IMMEDIATE``); on PostgreSQL the upsert
        takes a row lock that a concurrent upsert of the same name waits for.
        """
        self.run(
            upsert(
                self.dialect,
                NAMED_LOCKS,
                {"name": name, "hits": 1},
                ["name"],
                {"hits": NAMED_LOCKS.c.hits + 1},
            )
        )


class StateDB:
    """Multi-process safe access to the state database at ``url`` (SQLite or PostgreSQL)."""

    def __init__(self, url: str | None = None, *, schema: str | None = None):
        self.url = url or default_state_url()
        parsed, self._schema = _parse_url(self.url, schema)
        self.url_redacted = parsed.render_as_string(hide_password=True).replace("+psycopg2", "")
        self.dialect = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
        self._engine = (
            _sqlite_engine(parsed) if self.dialect == "sqlite" else _postgresql_engine(parsed, self._schema)
        )
        self._pid = os.getpid()
        self._local = threading.local()
        self._ensured: set[tuple[str, int]] = set()
        self._bootstrap()

    @property
    def schema(self) -> str | None:
        return self._schema

    @property
    def engine(self) -> sa.Engine:
        """This process's engine (a forked child gets fresh connections, never its parent's)."""
        if os.getpid() != self._pid:
            self._engine.dispose(close=False)
            self._pid = os.getpid()
            self._local = threading.local()
        return self._engine

    def error(self, exc: Exception, statement: str) -> StateDBError:
        detail = str(getattr(exc, "orig", exc)).strip()
        return StateDBError(
            f"state DB {self.url_redacted}: {detail} (while running: {statement.strip()[:200]})"
        )

    def close(self) -> None:
        self._engine.dispose()

    # -- transactions ----------------------------------------------------------------------------
    def _connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except sa.exc.OperationalError as exc:
            detail = str(getattr(exc, "orig", exc)).strip()
            raise StateDBError(f"state DB {self.url_redacted} unreachable: {detail}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction; nested calls join the outer one (commit happens once, at the end)."""
        outer = getattr(self._local, "tx", None)
        if outer is not None:
            yield outer
            return
        connection = self._connect()
        try:
            try:
                connection.begin()
            except sa.exc.OperationalError as exc:
                raise StateDBError(
                    f"state DB {self.url_redacted}: cannot start a write transaction: {exc.orig}"
                ) from exc
            tx = self._local.tx = Transaction(self, connection)
            try:
                yield tx
            except BaseException:
                connection.rollback()
                raise
            else:
                connection.commit()
        finally:
            self._local.tx = None
            connection.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Legacy: rows of a raw ``?`` SQL query (inside the current transaction, if any)."""
        outer = getattr(self._local, "tx", None)
        if outer is not None:
            return outer.query(sql, params)
        with self._read() as tx:
            return tx.query(sql, params)

    def rows(self, statement: sa.Executable) -> list[dict[str, Any]]:
        """Rows of a Core ``select`` as dicts (inside the current transaction, if any)."""
        outer = getattr(self._local, "tx", None)
        if outer is not None:
            return outer.rows(statement)
        with self._read() as tx:
            return tx.rows(statement)

    @contextmanager
    def _read(self) -> Iterator[Transaction]:
        """A read outside any write transaction: no write lock, no snapshot kept open afterwards."""
        with self._connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            try:
                yield Transaction(self, connection)
            finally:
                if connection.in_transaction():
                    connection.rollback()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Legacy: run one raw ``?`` statement in its own transaction; returns the affected row count."""
        with self.transaction() as tx:
            return tx.execute(sql, params).rowcount

    def run(self, statement: sa.Executable) -> int:
        """Run one Core statement in its own transaction; returns the affected row count."""
        with self.transaction() as tx:
            return tx.run(statement).rowcount

    # -- schema ----------------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        with self.transaction() as tx:
            self._serialise_ddl(tx)
            for table in (SCHEMA_VERSIONS, NAMED_LOCKS):
                table.create(tx._connection, checkfirst=True)
        self.ensure_schema("state", STATE_MIGRATIONS)

    def _serialise_ddl(self, tx: Transaction) -> None:
        if self.dialect == "postgresql":  # concurrent CREATE TABLE IF NOT EXISTS can collide in pg_type
            tx.run(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"tradepulse-schema:{self.schema}")))
            )

    def _apply(self, tx: Transaction, step: Migration) -> None:
        if isinstance(step, (sa.Table, sa.Index)):
            step.create(tx._connection, checkfirst=True)
        elif isinstance(step, str):
            autoid_sql = (
                "INTEGER PRIMARY KEY AUTOINCREMENT" if self.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
            )
            tx.execute(step.replace("{autoid}", autoid_sql))
        else:
            from alembic.migration import MigrationContext
            from alembic.operations import Operations

            step(Operations(MigrationContext.configure(tx._connection)))

    def ensure_schema(self, name: str, migrations: Sequence[Migration]) -> int:
        """Apply the pending steps of ``name``'s append-only migration list; returns the version.

        Step *i* (1-based) is version *i*: add a step to migrate, never edit an applied one. Safe to call
        from many processes at once; a no-op when up to date; refuses a database newer than the code.
        """
        version = len(migrations)
        if (name, version) in self._ensured:
            return version
        with self.transaction() as tx:
            self._serialise_ddl(tx)
            tx.lock(f"schema:{name}")
            current = (
                tx.run(
                    sa.select(SCHEMA_VERSIONS.c.version).where(SCHEMA_VERSIONS.c.name == name)
                ).scalar_one_or_none()
                or 0
            )
            if current > version:
                raise StateDBError(
                    f"state DB {self.url_redacted}: schema {name!r} is at version {current}, newer than this "
                    f"code's {version}; upgrade tradepulse-assets"
                )
            for step in migrations[current:]:
                self._apply(tx, step)
            if current < version:
                stamp = {"name": name, "version": version, "applied_at": to_iso(dt.datetime.now(UTC))}
                tx.run(upsert(self.dialect, SCHEMA_VERSIONS, stamp, ["name"], ["version", "applied_at"]))
        self._ensured.add((name, version))
        return version

    def schema_version(self, name: str) -> int:
        rows = self.rows(sa.select(SCHEMA_VERSIONS.c.version).where(SCHEMA_VERSIONS.c.name == name))
        return rows[0]["version"] if rows else 0

    # -- watermarks ------------------------------------------------------------------------------
    def get_watermark(self, name: str) -> str | None:
        rows = self.rows(sa.select(WATERMARKS.c.value).where(WATERMARKS.c.name == name))
        return rows[0]["value"] if rows else None

    def set_watermark(self, name: str, value: str, now: dt.datetime | None = None) -> None:
        row = {"name": name, "value": value, "updated_at": to_iso(now) if now else None}
        self.run(upsert(self.dialect, WATERMARKS, row, ["name"], ["value", "updated_at"]))

    def advance_watermark(self, name: str, value: str, now: dt.datetime | None = None) -> str:
        """Set ``name`` to ``value`` only if it moves forward (text order); returns the stored value.

        Concurrent writers can race with older values; the watermark never goes back.
        """
        row = {"name": name, "value": value, "updated_at": to_iso(now) if now else None}
        forward = upsert(
            self.dialect,
            WATERMARKS,
            row,
            ["name"],
            ["value", "updated_at"],
            where=lambda excluded: excluded.value > WATERMARKS.c.value,
        )
        with self.transaction() as tx:
            tx.run(forward)
            return tx.run(sa.select(WATERMARKS.c.value).where(WATERMARKS.c.name == name)).scalar_one()

    # -- lag samples -----------------------------------------------------------------------------
    def record_lag(
        self, market: str, measured_at: dt.datetime, lag_seconds: float, watermark: dt.datetime | str | None
    ) -> None:
        """One lag measurement of ``market``; re-recording the same instant replaces it."""
        wm = to_iso(watermark) if isinstance(watermark, dt.datetime) else watermark
        row = {
            "market": market,
            "measured_at": to_iso(measured_at),
            "lag_seconds": float(lag_seconds),
            "watermark": wm,
        }
        self.run(
            upsert(self.dialect, LAG_SAMPLES, row, ["market", "measured_at"], ["lag_seconds", "watermark"])
        )

    def lag_history(
        self, market: str, since: dt.datetime, until: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Samples of ``market`` with ``since <= measured_at [<= until]``, oldest first.

        Each row: ``market``, ``measured_at`` (datetime), ``lag_seconds`` (float), ``watermark`` (text).
        """
        c = LAG_SAMPLES.c
        statement = sa.select(c.market, c.measured_at, c.lag_seconds, c.watermark).where(
            c.market == market, c.measured_at >= to_iso(since)
        )
        if until is not None:
            statement = statement.where(c.measured_at <= to_iso(until))
        rows = self.rows(statement.order_by(c.measured_at))
        for row in rows:
            row["measured_at"] = from_iso(row["measured_at"])
            row["lag_seconds"] = float(row["lag_seconds"])
        return rows

    def latest_lag(self, market: str) -> dict[str, Any] | None:
        c = LAG_SAMPLES.c
        rows = self.rows(
            sa.select(c.market, c.measured_at, c.lag_seconds, c.watermark)
            .where(c.market == market)
            .order_by(c.measured_at.desc())
            .limit(1)
        )
        if not rows:
            return None
        rows[0]["measured_at"] = from_iso(rows[0]["measured_at"])
        return rows[0]
