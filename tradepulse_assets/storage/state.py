"""The state database: incidents, control-plane toggles, lag samples, outboxes and watermarks.

Why one small wrapper instead of an ORM: every writer of this state lives in a different process
(the Dagster daemon's sensors, run workers, ``tradepulse-cli``), on SQLite in the embedded profile
and on PostgreSQL in production. What they need is the same few guarantees on both:

- a write transaction that serialises against the other processes (SQLite: WAL + ``BEGIN
  IMMEDIATE`` + ``busy_timeout``; PostgreSQL: ordinary transactions, row locks, ``ON CONFLICT``),
- one placeholder style (qmark ``?``, translated to ``%s`` for psycopg2) so SQL is written once,
- idempotent, versioned DDL (``ensure_schema``) that is safe when several processes start at once,
- a named lock (``Transaction.lock``) to serialise a read-then-write on a key (e.g. "is an incident
  already open for this fingerprint?") on both dialects.

Timestamps are stored as fixed-width ISO-8601 UTC text (``to_iso``), so text order is time order.
"""

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tradepulse_assets.storage.home import tradepulse_home

STATE_DB_URL_ENV = "TRADEPULSE_STATE_DB_URL"
SQLITE_BUSY_TIMEOUT_MS = 60_000

UTC = dt.timezone.utc


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
    url = os.environ.get(STATE_DB_URL_ENV)
    if url:
        return url
    return f"sqlite:///{tradepulse_home(create=False) / 'state' / 'state.db'}"


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


@dataclass(frozen=True)
class _Target:
    dialect: str  # "sqlite" | "postgresql"
    path: str | None = None  # sqlite file
    dsn: str | None = None  # postgresql DSN without our own parameters
    schema: str | None = None  # postgresql schema (search_path)


def _parse_url(url: str, schema: str | None) -> _Target:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path:
            raise StateDBError(f"state DB URL {url!r}: expected sqlite:///relative/path or sqlite:////absolute/path")
        return _Target("sqlite", path=path)
    if parts.scheme in ("postgresql", "postgres"):
        query = dict(parse_qsl(parts.query))
        schema = schema or query.pop("schema", None)
        if schema and not schema.replace("_", "").isalnum():
            raise StateDBError(f"state DB URL {url!r}: schema {schema!r} must be letters, digits and '_'")
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), parts.fragment))
        return _Target("postgresql", dsn=dsn, schema=schema)
    raise StateDBError(f"state DB URL {url!r}: unsupported scheme (use sqlite:/// or postgresql://)")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class Transaction:
    """The cursor-like object yielded by ``StateDB.transaction()``; SQL uses ``?`` placeholders."""

    def __init__(self, db: "StateDB", cursor):
        self._db = db
        self._cursor = cursor

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "Transaction":
        sql = self._db._prepare(sql)
        try:
            self._cursor.execute(sql, tuple(params))
        except Exception as exc:
            if self._db._is_operational(exc):
                raise StateDBError(f"state DB {self._db.url_redacted}: {exc} (while running: {sql.strip()[:200]})") from exc
            raise
        return self

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchall(self) -> list[dict[str, Any]]:
        if self._cursor.description is None:
            return []
        names = [d[0] for d in self._cursor.description]
        return [dict(zip(names, row)) for row in self._cursor.fetchall()]

    def fetchone(self) -> dict[str, Any] | None:
        if self._cursor.description is None:
            return None
        row = self._cursor.fetchone()
        return None if row is None else dict(zip([d[0] for d in self._cursor.description], row))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def lock(self, name: str) -> None:
        """Serialise this transaction against every other one locking ``name``, until commit.

        SQLite write transactions are already serial (``BEGIN IMMEDIATE``); on PostgreSQL the upsert
        takes a row lock that a concurrent upsert of the same name waits for.
        """
        self.execute(
            "INSERT INTO named_locks (name, hits) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET hits = named_locks.hits + 1",
            (name,),
        )


class StateDB:
    """Multi-process safe access to the state database at ``url`` (SQLite or PostgreSQL)."""

    def __init__(self, url: str | None = None, *, schema: str | None = None):
        self.url = url or default_state_url()
        self.url_redacted = _redact(self.url)
        self._target = _parse_url(self.url, schema)
        self._local = threading.local()
        self._ensured: set[tuple[str, int]] = set()
        if self.dialect == "sqlite":
            Path(self._target.path).parent.mkdir(parents=True, exist_ok=True)
        self._bootstrap()

    # -- connection handling -------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        return self._target.dialect

    @property
    def schema(self) -> str | None:
        return self._target.schema

    def _connect(self):
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self._target.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            return conn
        import psycopg2

        try:
            conn = psycopg2.connect(self._target.dsn)
        except psycopg2.OperationalError as exc:
            raise StateDBError(f"state DB {self.url_redacted} unreachable: {str(exc).strip()}") from exc
        if self._target.schema:
            with conn.cursor() as cur:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._target.schema}"')
                cur.execute(f'SET search_path TO "{self._target.schema}"')
            conn.commit()
        return conn

    def _conn(self):
        # One connection per thread and process: connections must not cross a fork.
        pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != pid:
            conn = self._connect()
            self._local.conn, self._local.pid, self._local.depth = conn, pid, 0
        elif self.dialect == "postgresql" and conn.closed:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    def _prepare(self, sql: str) -> str:
        return qmark_to_pyformat(sql) if self.dialect == "postgresql" else sql

    def _is_operational(self, exc: Exception) -> bool:
        if isinstance(exc, sqlite3.OperationalError):
            return True
        try:
            import psycopg2

            return isinstance(exc, psycopg2.OperationalError)
        except ImportError:  # pragma: no cover
            return False

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction; nested calls join the outer one (commit happens once, at the end)."""
        conn = self._conn()
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield self._local.tx
            finally:
                self._local.depth = depth
            return
        cursor = conn.cursor()
        tx = Transaction(self, cursor)
        if self.dialect == "sqlite":
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StateDBError(f"state DB {self.url_redacted}: cannot start a write transaction: {exc}") from exc
        self._local.depth, self._local.tx = 1, tx
        try:
            yield tx
        except BaseException:
            conn.rollback() if self.dialect == "postgresql" else cursor.execute("ROLLBACK")
            raise
        else:
            conn.commit() if self.dialect == "postgresql" else cursor.execute("COMMIT")
        finally:
            self._local.depth, self._local.tx = 0, None
            cursor.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if getattr(self._local, "depth", 0) and getattr(self._local, "pid", None) == os.getpid():
            return self._local.tx.query(sql, params)
        conn = self._conn()
        cursor = conn.cursor()
        try:
            rows = Transaction(self, cursor).query(sql, params)
        finally:
            cursor.close()
            if self.dialect == "postgresql":
                conn.rollback()  # end the implicit read transaction: no snapshot kept open
        return rows

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; returns the affected row count."""
        with self.transaction() as tx:
            return tx.execute(sql, params).rowcount

    # -- schema ----------------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        with self.transaction() as tx:
            if self.dialect == "postgresql":
                # Concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type: serialise it.
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"tradepulse-schema:{self.schema}",))
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions ("
                " name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
            )
            tx.execute("CREATE TABLE IF NOT EXISTS named_locks (name TEXT PRIMARY KEY, hits INTEGER NOT NULL)")
        self.ensure_schema("state", _STATE_DDL)

    def ddl(self, statement: str) -> str:
        """Dialect macros for DDL: ``{autoid}`` is an auto-incrementing integer primary key."""
        autoid = "INTEGER PRIMARY KEY AUTOINCREMENT" if self.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
        return statement.replace("{autoid}", autoid)

    def ensure_schema(self, name: str, ddl_statements: Sequence[str]) -> int:
        """Apply the not-yet-applied statements of an append-only DDL list; returns the version.

        Statement *i* (1-based) is version *i* of schema ``name``: add a statement to migrate, never
        edit an applied one. Safe to call from many processes at once; a no-op when up to date.
        """
        version = len(ddl_statements)
        if (name, version) in self._ensured:
            return version
        with self.transaction() as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"tradepulse-schema:{self.schema}",))
            tx.lock(f"schema:{name}")
            row = tx.query_one("SELECT version FROM schema_versions WHERE name = ?", (name,))
            current = row["version"] if row else 0
            if current > version:
                raise StateDBError(
                    f"state DB {self.url_redacted}: schema {name!r} is at version {current}, newer than this "
                    f"code's {version}; upgrade tradepulse-assets"
                )
            for statement in ddl_statements[current:]:
                tx.execute(self.ddl(statement))
            if current < version:
                tx.execute(
                    "INSERT INTO schema_versions (name, version, applied_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at",
                    (name, version, to_iso(dt.datetime.now(UTC))),
                )
        self._ensured.add((name, version))
        return version

    def schema_version(self, name: str) -> int:
        rows = self.query("SELECT version FROM schema_versions WHERE name = ?", (name,))
        return rows[0]["version"] if rows else 0

    # -- watermarks ------------------------------------------------------------------------------
    def get_watermark(self, name: str) -> str | None:
        rows = self.query("SELECT value FROM watermarks WHERE name = ?", (name,))
        return rows[0]["value"] if rows else None

    def set_watermark(self, name: str, value: str, now: dt.datetime | None = None) -> None:
        self.execute(
            "INSERT INTO watermarks (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (name, value, to_iso(now) if now else None),
        )

    def advance_watermark(self, name: str, value: str, now: dt.datetime | None = None) -> str:
        """Set ``name`` to ``value`` only if it moves forward (text order); returns the stored value.

        Concurrent writers can race with older values; the watermark never goes back.
        """
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO watermarks (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at "
                "WHERE excluded.value > watermarks.value",
                (name, value, to_iso(now) if now else None),
            )
            return tx.query_one("SELECT value FROM watermarks WHERE name = ?", (name,))["value"]

    # -- lag samples -----------------------------------------------------------------------------
    def record_lag(
        self, market: str, measured_at: dt.datetime, lag_seconds: float, watermark: dt.datetime | str | None
    ) -> None:
        """One lag measurement of ``market``; re-recording the same instant replaces it."""
        wm = to_iso(watermark) if isinstance(watermark, dt.datetime) else watermark
        self.execute(
            "INSERT INTO lag_samples (market, measured_at, lag_seconds, watermark) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (market, measured_at) DO UPDATE SET lag_seconds = excluded.lag_seconds, "
            "watermark = excluded.watermark",
            (market, to_iso(measured_at), float(lag_seconds), wm),
        )

    def lag_history(
        self, market: str, since: dt.datetime, until: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Samples of ``market`` with ``since <= measured_at [<= until]``, oldest first.

        Each row: ``market``, ``measured_at`` (datetime), ``lag_seconds`` (float), ``watermark`` (text).
        """
        sql = "SELECT market, measured_at, lag_seconds, watermark FROM lag_samples WHERE market = ? AND measured_at >= ?"
        params: list[Any] = [market, to_iso(since)]
        if until is not None:
            sql += " AND measured_at <= ?"
            params.append(to_iso(until))
        rows = self.query(sql + " ORDER BY measured_at", params)
        for row in rows:
            row["measured_at"] = from_iso(row["measured_at"])
            row["lag_seconds"] = float(row["lag_seconds"])
        return rows

    def latest_lag(self, market: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT market, measured_at, lag_seconds, watermark FROM lag_samples WHERE market = ? "
            "ORDER BY measured_at DESC LIMIT 1",
            (market,),
        )
        if not rows:
            return None
        rows[0]["measured_at"] = from_iso(rows[0]["measured_at"])
        return rows[0]


_STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS watermarks (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT)",
    "CREATE TABLE IF NOT EXISTS lag_samples ("
    " market TEXT NOT NULL, measured_at TEXT NOT NULL, lag_seconds REAL NOT NULL, watermark TEXT,"
    " PRIMARY KEY (market, measured_at))",
)
