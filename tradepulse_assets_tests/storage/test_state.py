"""The state database on SQLite and (when available) PostgreSQL: one API, the same answers."""

import datetime as dt
import multiprocessing as mp
import signal

import pytest

from tradepulse_assets.storage.state import StateDB, StateDBError, autoid, qmark_to_pyformat, to_iso
from tradepulse_assets_tests.incidents import workers

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def test_qmark_placeholders_translate_outside_quotes_only():
    assert qmark_to_pyformat("SELECT * FROM t WHERE a = ? AND b LIKE 'x?%' AND c = ?") == (
        "SELECT * FROM t WHERE a = %s AND b LIKE 'x?%%' AND c = %s"
    )


def test_literals_with_question_marks_and_percent_survive_on_both_dialects(db):
    assert db.query("SELECT 'what?' AS q, '100%' AS p, ? AS v", ("?",)) == [{"q": "what?", "p": "100%", "v": "?"}]


def test_watermarks_set_get_and_advance_only_forward(db):
    assert db.get_watermark("XNYS/production") is None
    db.set_watermark("XNYS/production", "2026-03-09T15:00:00Z", now=T0)
    assert db.get_watermark("XNYS/production") == "2026-03-09T15:00:00Z"
    assert db.advance_watermark("XNYS/production", "2026-03-09T14:00:00Z") == "2026-03-09T15:00:00Z"
    assert db.advance_watermark("XNYS/production", "2026-03-09T16:00:00Z") == "2026-03-09T16:00:00Z"


def test_lag_history_is_ordered_filtered_and_replaces_a_repeated_instant(db):
    for minutes, lag in ((2, 30.0), (0, 400.0), (1, 500.0)):
        db.record_lag("XNYS", T0 + dt.timedelta(minutes=minutes), lag, T0)
    db.record_lag("XNYS", T0 + dt.timedelta(minutes=2), 20.0, T0)  # re-measured
    db.record_lag("XLON", T0, 1.0, None)
    rows = db.lag_history("XNYS", since=T0 + dt.timedelta(minutes=1))
    assert [(r["measured_at"], r["lag_seconds"]) for r in rows] == [
        (T0 + dt.timedelta(minutes=1), 500.0), (T0 + dt.timedelta(minutes=2), 20.0)]
    assert rows[0]["watermark"] == to_iso(T0)
    assert db.latest_lag("XNYS")["lag_seconds"] == 20.0


def test_naive_timestamps_are_refused(db):
    with pytest.raises(ValueError, match="naive"):
        db.record_lag("XNYS", dt.datetime(2026, 3, 9, 15), 1.0, None)


def test_ensure_schema_is_idempotent_and_applies_only_new_versions(db):
    v1 = ["CREATE TABLE IF NOT EXISTS widgets (id {autoid}, name TEXT NOT NULL)"]
    assert db.ensure_schema("widgets", v1) == 1
    db.execute("INSERT INTO widgets (name) VALUES (?)", ("a",))
    assert StateDB(db.url).ensure_schema("widgets", v1) == 1  # another process: no-op, data kept
    v2 = v1 + ["ALTER TABLE widgets ADD COLUMN colour TEXT"]
    assert StateDB(db.url).ensure_schema("widgets", v2) == 2
    db.execute("INSERT INTO widgets (name, colour) VALUES (?, ?)", ("b", "red"))
    assert [r["name"] for r in db.query("SELECT name FROM widgets ORDER BY id")] == ["a", "b"]
    assert db.schema_version("widgets") == 2
    with pytest.raises(StateDBError, match="newer than this code"):
        StateDB(db.url).ensure_schema("widgets", v1)


def test_a_failed_transaction_leaves_nothing_behind_including_nested_work(db):
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx.execute("INSERT INTO watermarks (name, value) VALUES ('a', '1')")
            with db.transaction() as inner:  # joins the outer transaction
                inner.execute("INSERT INTO watermarks (name, value) VALUES ('b', '2')")
            raise RuntimeError("boom")
    assert db.query("SELECT name FROM watermarks") == []


def test_read_modify_write_from_several_processes_loses_no_update(target):
    StateDB(target.url)
    ctx = mp.get_context("spawn")
    processes, times = 4, 25
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        # workers answer Pool.terminate's SIGTERM even if this process ignores it
        default_sigterm = dict(initializer=signal.signal, initargs=(signal.SIGTERM, signal.SIG_DFL))
        with ctx.Pool(processes, **default_sigterm) as pool:
            results = [pool.apply_async(workers.increment, (target.url, times, barrier)) for _ in range(processes)]
            for r in results:
                r.get(timeout=240)
    assert StateDB(target.url).get_watermark("counter") == str(processes * times)


def test_bad_urls_name_the_problem(tmp_path):
    with pytest.raises(StateDBError, match="unsupported scheme"):
        StateDB("mysql://x/y")
    with pytest.raises(StateDBError, match="unreachable"):
        StateDB("postgresql://nobody@127.0.0.1:1/none")


def test_core_migrations_create_tables_and_alter_them_the_same_way_on_both_dialects(db):
    import sqlalchemy as sa

    name = sa.Column("name", sa.Text, nullable=False)
    gadgets = sa.Table("gadgets", sa.MetaData(), autoid("id"), name, sqlite_autoincrement=True)
    v1 = [gadgets]
    assert db.ensure_schema("gadgets", v1) == 1
    db.run(gadgets.insert().values(name="a"))
    v2 = v1 + [lambda op: op.add_column("gadgets", sa.Column("colour", sa.Text))]
    assert StateDB(db.url).ensure_schema("gadgets", v2) == 2
    assert StateDB(db.url).ensure_schema("gadgets", v2) == 2  # idempotent
    db.execute("INSERT INTO gadgets (name, colour) VALUES (?, ?)", ("b", "red"))
    assert db.query("SELECT id, name, colour FROM gadgets ORDER BY id") == [
        {"id": 1, "name": "a", "colour": None},
        {"id": 2, "name": "b", "colour": "red"},
    ]
    with pytest.raises(StateDBError, match="newer than this code"):
        StateDB(db.url).ensure_schema("gadgets", v1)


def test_a_database_made_by_the_old_ddl_text_is_already_current(target):
    """Schemas created by the former DDL strings keep their version: the Core definitions add nothing."""
    from tradepulse_assets.incidents.control_plane import CONTROL_MIGRATIONS, ControlPlane

    legacy = (
        "CREATE TABLE IF NOT EXISTS control_holds ("
        " market TEXT NOT NULL, toggle TEXT NOT NULL, holder TEXT NOT NULL, incident_id TEXT,"
        " reason TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (market, toggle, holder))",
        "CREATE TABLE IF NOT EXISTS control_events ("
        " seq {autoid}, at TEXT NOT NULL, market TEXT NOT NULL, toggle TEXT NOT NULL, action TEXT NOT NULL,"
        " holder TEXT NOT NULL, incident_id TEXT, reason TEXT NOT NULL, paused_after INTEGER NOT NULL)",
    )
    old = StateDB(target.url)
    assert old.ensure_schema("control_plane", legacy) == len(CONTROL_MIGRATIONS)
    plane = ControlPlane(StateDB(target.url), markets=["XNYS"])
    assert plane.db.schema_version("control_plane") == len(CONTROL_MIGRATIONS)
    plane.pause("XNYS", "feature_store_writer", reason="test", now=T0)
    assert plane.is_paused("XNYS", "feature_store_writer")


def test_upsert_inserts_updates_and_respects_its_condition(db):
    from tradepulse_assets.storage.state import WATERMARKS, upsert

    row = {"name": "w", "value": "2", "updated_at": None}
    db.run(upsert(db.dialect, WATERMARKS, row, ["name"], ["value"]))
    db.run(upsert(db.dialect, WATERMARKS, {**row, "value": "1"}, ["name"], ["value"],
                  where=lambda excluded: excluded.value > WATERMARKS.c.value))
    assert db.get_watermark("w") == "2"
    db.run(upsert(db.dialect, WATERMARKS, {**row, "value": "3"}, ["name"]))  # DO NOTHING
    assert db.get_watermark("w") == "2"
