"""Consistent: each database is read from one REPEATABLE READ snapshot, so DDL running during a
sync never yields a table without columns, a dangling foreign key or a view without its tables.
"""

import threading
import time
from collections.abc import Callable

import psycopg2.errors
from psycopg2 import sql

from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.reliability.conftest import SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget

SYNCS = 25


def _churn(
    server: EmbeddedPostgres, database: str, stop: threading.Event, rounds: list[int], deadlocks: list[str]
) -> None:
    """Creates and drops linked tables and views, one autocommitted statement at a time, so
    every intermediate state is visible to a sync that starts at the wrong moment.

    A statement chosen as a deadlock victim is recorded and run again (see the test)."""
    with server.connect(database) as conn, conn.cursor() as cur:
        i = 0
        while not stop.is_set():
            p, c, v = (sql.Identifier("churn", f"{kind}_{i}") for kind in ("parent", "child", "view"))
            for statement in (
                sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text)").format(p),
                sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, parent_id int REFERENCES {} (id))").format(c, p),
                sql.SQL("CREATE VIEW {} AS SELECT c.id, p.note FROM {} c JOIN {} p ON p.id = c.parent_id").format(v, c, p),
                sql.SQL("ALTER TABLE {} ADD COLUMN extra int").format(p),
                sql.SQL("ALTER TABLE {} RENAME COLUMN note TO remark").format(p) if i % 2 else sql.SQL("SELECT 1"),
                sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier("churn", f"parent_{i - 2}")),
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("churn", f"child_{i - 2}")),
            ):
                try:
                    cur.execute(statement)
                except psycopg2.errors.DeadlockDetected as error:
                    deadlocks.append(" ".join(str(error).split()))
                    cur.execute(statement)
            i += 1
            rounds.append(i)
            time.sleep(0.01)  # let a round's relations live about as long as a sync


def _check(snapshot: PostgresCatalogSnapshot) -> int:
    """Every invariant a torn read would break; returns how many churn relations it saw."""
    relations = snapshot.relations_by_key()
    seen = 0
    for (database, schema, name), relation in relations.items():
        assert relation.columns, f"{schema}.{name} has no columns"
        names = [c.name for c in relation.columns]
        assert len(names) == len(set(names)), f"{schema}.{name} has duplicate columns {names}"
        for fk in relation.foreign_keys:
            referred = relations.get((database, fk.referred_schema, fk.referred_table))
            assert referred is not None, f"{schema}.{name} -> dangling {fk.referred_schema}.{fk.referred_table}"
            assert set(fk.referred_columns) <= {c.name for c in referred.columns}
            assert set(fk.columns) <= set(names)
        assert set(relation.primary_key) <= set(names)
        if schema == "churn":
            seen += 1
            if name.startswith("view_"):
                suffix = name.removeprefix("view_")
                assert (database, "churn", f"parent_{suffix}") in relations
                assert (database, "churn", f"child_{suffix}") in relations
                assert names == ["id", "note"] or names == ["id", "remark"], names
    return seen


def test_ddl_in_a_loop_never_yields_a_torn_catalog(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], make_settings: SettingsFactory
) -> None:
    target = fresh_database()
    pagila_server.execute(
        sql.SQL(
            "CREATE SCHEMA churn; GRANT USAGE ON SCHEMA churn TO {r};"
            " ALTER DEFAULT PRIVILEGES IN SCHEMA churn GRANT SELECT ON TABLES TO {r}"
        ).format(r=sql.Identifier(target.user)),
        target.database,
    )
    settings = make_settings(target, filters={"schemas": {"include": ["churn", "public"]}})
    stop, rounds, deadlocks = threading.Event(), [], []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _churn(pagila_server, target.database, stop, rounds, deadlocks)
        except BaseException as error:  # surfaced below: a dead churn thread would prove nothing
            errors.append(error)

    thread = threading.Thread(target=run, name="ddl-churn", daemon=True)
    thread.start()
    seen_churn = []
    try:
        while not rounds:
            time.sleep(0.01)
        for _ in range(SYNCS):
            snapshot = read_catalog(settings)
            assert not snapshot.skipped, snapshot.skipped
            seen_churn.append(_check(snapshot))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors
    assert len(rounds) > SYNCS, "the DDL loop did not overlap the syncs"
    # Most syncs saw churn relations, and not always the same number: DDL really ran during them.
    assert sum(1 for seen in seen_churn if seen) > SYNCS // 2 and len(set(seen_churn)) > 1, seen_churn
    # Our deparse calls wait at most 100 ms for a lock, then release all ours and retry: a DROP
    # racing the read is never the deadlock victim (it was, before, about once in 150 syncs).
    assert deadlocks == [], deadlocks
