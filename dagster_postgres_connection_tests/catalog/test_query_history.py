"""Query history on Debian's PostgreSQL with pg_stat_statements preloaded: lineage from executed
INSERT ... SELECT / CREATE TABLE AS / MERGE, usage per relation, and one warning without the
extension or the privilege (nothing else changes)."""

import contextlib
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace as dataclass_replace

import dagster as dg
import psycopg2
import pytest

from dagster_postgres_connection.access.grants import read_only_recipe
from dagster_postgres_connection.assets import build_asset_specs
from dagster_postgres_connection.catalog.fingerprint import check_unchanged
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot, PostgresRelation
from dagster_postgres_connection.catalog.query_history import statements_query
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.summary import SnapshotSummary
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.testing import LOCALHOST
from dagster_postgres_connection.translator import DagsterPostgresTranslator
from dagster_postgres_connection_tests.debian_postgres import DebianPostgres
from dagster_postgres_connection_tests.reliability.conftest import (  # noqa: F401 (fixture, used by name)
    SettingsFactory,
    make_settings_fixture,
)
from dagster_postgres_connection_tests.utils import PgTarget

HISTORY_DDL = """
CREATE SCHEMA etl;
CREATE TABLE etl.raw_orders (id int PRIMARY KEY, customer_id int, amount_cents int);
CREATE TABLE etl.staged_orders (order_id int, customer_id int, amount numeric);
CREATE TABLE etl.revenue (customer_id int PRIMARY KEY, revenue numeric);
CREATE TABLE public.order_sink (id int, amount_cents int);
"""

# Run by a writer role, as a job outside Dagster would; each at least once.
WORKLOAD = [
    "INSERT INTO etl.raw_orders SELECT g, g % 7, g * 100 FROM generate_series(1, 50) g",
    *["INSERT INTO etl.staged_orders (order_id, customer_id, amount) "
      "SELECT r.id, r.customer_id, r.amount_cents / 100.0 FROM etl.raw_orders r WHERE r.id > 40"] * 3,
    "MERGE INTO etl.revenue t USING (SELECT customer_id, sum(amount) AS total FROM etl.staged_orders GROUP BY 1) s "
    "ON t.customer_id = s.customer_id WHEN MATCHED THEN UPDATE SET revenue = s.total "
    "WHEN NOT MATCHED THEN INSERT (customer_id, revenue) VALUES (s.customer_id, s.total)",
    "CREATE TABLE etl.revenue_copy AS SELECT customer_id, revenue FROM etl.revenue",
    "INSERT INTO order_sink SELECT id, amount_cents FROM etl.raw_orders WHERE id < 3",  # unqualified: public
    *["SELECT count(*) FROM etl.raw_orders WHERE customer_id = 3"] * 4,
]


def superuser(debian: DebianPostgres, database: str) -> "contextlib.closing[psycopg2.extensions.connection]":
    conn = psycopg2.connect(host=LOCALHOST, port=debian.target.port, user="postgres", dbname=database, sslmode="disable")
    conn.autocommit = True
    return contextlib.closing(conn)


@pytest.fixture(name="history_db", scope="module")
def history_db_fixture(debian_postgres: DebianPostgres) -> Iterator[Callable[..., PgTarget]]:
    """`history_db(extension=True, read_all_stats=True)`: a database with the workload run in it,
    and the role `make_settings` connects as (`tls_reader`) granted what is asked."""
    created: list[str] = []
    reader = debian_postgres.target.user

    def make(*, extension: bool = True, read_all_stats: bool = True) -> PgTarget:
        name = f"history_{secrets.token_hex(3)}"
        with superuser(debian_postgres, "postgres") as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"{'GRANT' if read_all_stats else 'REVOKE'} pg_read_all_stats {'TO' if read_all_stats else 'FROM'} {reader}")
        created.append(name)
        with superuser(debian_postgres, name) as conn, conn.cursor() as cur:
            cur.execute(HISTORY_DDL)
            cur.execute(f"GRANT USAGE ON SCHEMA etl TO {reader}; GRANT SELECT ON ALL TABLES IN SCHEMA etl, public TO {reader}")
            if extension:
                cur.execute("CREATE EXTENSION pg_stat_statements")
                cur.execute("SELECT pg_stat_statements_reset()")
            for statement in WORKLOAD:
                cur.execute(statement)
            cur.execute(f"GRANT SELECT ON etl.revenue_copy TO {reader}")
        return dataclass_replace(debian_postgres.target, database=name)

    yield make
    with superuser(debian_postgres, "postgres") as conn, conn.cursor() as cur:
        cur.execute(f"REVOKE pg_read_all_stats FROM {reader}")
        for name in created:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def by_name(snapshot: PostgresCatalogSnapshot) -> dict[str, PostgresRelation]:
    return {f"{r.schema}.{r.name}": r for r in snapshot.relations()}


def test_executed_statements_give_lineage_and_usage(
    history_db: Callable[..., PgTarget], make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    target = history_db()
    with caplog.at_level(logging.WARNING):
        snapshot = read_catalog(make_settings(target, query_history=True))
    assert not [r for r in caplog.records if "query_history" in r.getMessage()]
    (database,) = snapshot.databases
    assert database.query_history_problem is None
    relations = by_name(snapshot)

    (staged,) = relations["etl.staged_orders"].written_by_queries
    assert (list(staged.operations), [r.name for r in staged.reads], staged.calls, staged.rows) == (
        ["INSERT"], ["raw_orders"], 3, 30,
    )
    assert staged.role == "postgres" and staged.query.startswith("INSERT INTO etl.staged_orders (order_id, customer_id, amount) SELECT")
    assert {c.column: [(i.relation.name, i.column) for i in c.inputs] for c in staged.column_lineage} == {
        "order_id": [("raw_orders", "id")],
        "customer_id": [("raw_orders", "customer_id")],
        "amount": [("raw_orders", "amount_cents")],
    }
    (merge,) = relations["etl.revenue"].written_by_queries
    assert (list(merge.operations), [r.name for r in merge.reads]) == (["MERGE"], ["staged_orders"])
    assert {c.column: [(i.relation.name, i.column) for i in c.inputs] for c in merge.column_lineage} == {
        "customer_id": [("staged_orders", "customer_id")],
        "revenue": [("staged_orders", "amount")],
    }
    (copy,) = relations["etl.revenue_copy"].written_by_queries
    assert (list(copy.operations), [r.name for r in copy.reads]) == (["CREATE TABLE AS"], ["revenue"])
    (sink,) = relations["public.order_sink"].written_by_queries  # unqualified, resolved in "$user", public
    assert [r.name for r in sink.reads] == ["raw_orders"]

    raw = relations["etl.raw_orders"].query_usage
    assert raw is not None
    # its INSERT (1 call, 50 rows), the staging INSERTs (3, 30), the sink (1, 2), the counts (4, 4)
    assert (raw.calls, raw.rows, raw.statements) == (9, 86, 4)
    assert list(relations["etl.raw_orders"].written_by_queries) == []

    # As assets: the executed statements are deps and metadata; with the setting off at load, gone.
    specs = {spec.key.path[-1]: spec for spec in build_asset_specs(snapshot, make_settings(target, query_history=True), DagsterPostgresTranslator())}
    assert [dep.asset_key.path[-1] for dep in specs["staged_orders"].deps] == ["raw_orders"]
    assert [dep.asset_key.path[-1] for dep in specs["revenue_copy"].deps] == ["revenue"]
    metadata = specs["staged_orders"].metadata
    assert metadata["dagster-postgres-connection/written_by_queries"].startswith(
        "INSERT from etl.raw_orders (3 calls, 30 rows, by postgres): INSERT INTO etl.staged_orders"
    )
    assert (specs["raw_orders"].metadata["dagster-postgres-connection/query_calls"], specs["raw_orders"].metadata["dagster-postgres-connection/query_rows"]) == (9, 86)
    lineage = metadata["dagster/column_lineage"]
    assert isinstance(lineage, dg.TableColumnLineage)
    assert [dep.column_name for dep in lineage.deps_by_column["amount"]] == ["amount_cents"]
    specs_off = {spec.key.path[-1]: spec for spec in build_asset_specs(snapshot, make_settings(target), DagsterPostgresTranslator())}
    assert specs_off["staged_orders"].deps == [] and "dagster/column_lineage" not in specs_off["staged_orders"].metadata
    assert not [key for key in specs_off["raw_orders"].metadata if "query" in key]


@pytest.mark.parametrize(
    "missing, advice",
    [
        ({"read_all_stats": False}, ["`GRANT pg_read_all_stats TO {user}`"]),
        (
            {"extension": False},
            [
                "pg_stat_statements is not installed in database `{database}`",
                "CREATE EXTENSION pg_stat_statements",
                "shared_preload_libraries",
            ],
        ),
    ],
    ids=["without_the_privilege", "without_the_extension"],
)
def test_history_that_cannot_be_read_warns_once_says_how_to_fix_it_and_changes_nothing(
    history_db: Callable[..., PgTarget],
    make_settings: SettingsFactory,
    caplog: pytest.LogCaptureFixture,
    missing: dict[str, bool],
    advice: list[str],
) -> None:
    """`missing` is what `history_db` leaves out; `advice` what the warning says (`{user}`, `{database}`: the target's)."""
    target = history_db(**missing)
    without = read_catalog(make_settings(target))
    with caplog.at_level(logging.WARNING):
        snapshot = read_catalog(make_settings(target, query_history=True))
    (warning,) = [r.getMessage() for r in caplog.records if "query_history" in r.getMessage()]
    for part in advice:
        assert part.format(user=target.user, database=target.database) in warning, warning
    assert by_name(snapshot) == by_name(without)
    assert all(r.query_usage is None and not r.written_by_queries for r in snapshot.relations())


def test_query_history_costs_the_same_statements_whatever_the_catalog_and_history_size(
    history_db: Callable[..., PgTarget], make_settings: SettingsFactory, debian_postgres: DebianPostgres
) -> None:
    target = history_db()
    settings: PostgresConnectionSettings = make_settings(target, query_history=True)
    small = read_catalog(settings)
    off = read_catalog(make_settings(target))
    with superuser(debian_postgres, target.database) as conn, conn.cursor() as cur:
        for i in range(60):
            cur.execute(f"CREATE TABLE etl.t{i} (id int); GRANT SELECT ON etl.t{i} TO {target.user}")
            cur.execute(f"INSERT INTO etl.t{i} SELECT id FROM etl.raw_orders WHERE id > {i}")
    large = read_catalog(settings)
    assert len(large.relations()) == len(small.relations()) + 60
    assert sum(1 for r in large.relations() if r.written_by_queries) >= 60
    assert large.statement_count == small.statement_count
    # the check, the read and its savepoint (SAVEPOINT, RELEASE)
    assert small.statement_count - off.statement_count == 4


def test_pg_12_column_names_are_used_for_older_extensions() -> None:
    """pg_stat_statements before 1.8 (PostgreSQL 12) has `total_time`; the check on the server
    (`has_total_exec_time`, read from pg_attribute) picks the statement."""
    assert "s.total_time AS total_ms" in statements_query("public", has_total_exec_time=False)
    assert "s.total_exec_time AS total_ms" in statements_query('we"ird', has_total_exec_time=True)
    assert 'FROM "we""ird".pg_stat_statements' in statements_query('we"ird', has_total_exec_time=True)


def test_the_grant_sql_recipe_gives_what_query_history_needs(
    history_db: Callable[..., PgTarget], make_settings: SettingsFactory, debian_postgres: DebianPostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = history_db(extension=False, read_all_stats=False)
    role = f"history_{secrets.token_hex(3)}"
    lines = read_only_recipe(role, {target.database: ["etl", "public"]}, query_history=True)
    assert f"GRANT pg_read_all_stats TO {role};" in lines
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;" in lines
    database = "postgres"
    try:
        for line in lines:  # as psql runs it: \connect switches database, \password is interactive
            if line.startswith("\\connect "):
                database = line.removeprefix("\\connect ").strip()
            elif not line.startswith(("\\", "--")):
                with superuser(debian_postgres, database) as conn, conn.cursor() as cur:
                    cur.execute(line)
        with superuser(debian_postgres, "postgres") as conn, conn.cursor() as cur:
            cur.execute(f"ALTER ROLE {role} PASSWORD 'Recipe-pw-1'")
        as_role = dataclass_replace(target, user=role, password="Recipe-pw-1")
        with caplog.at_level(logging.WARNING):
            snapshot = read_catalog(make_settings(as_role, query_history=True))
        assert not [r for r in caplog.records if "query_history" in r.getMessage()]
        usage = by_name(snapshot)["etl.raw_orders"].query_usage
        assert usage is not None and usage.calls >= 9
    finally:
        with superuser(debian_postgres, "postgres") as conn, conn.cursor() as cur:
            cur.execute(f"REVOKE pg_read_all_stats FROM {role}")


def test_with_query_history_every_sync_reads_the_catalog(
    history_db: Callable[..., PgTarget], make_settings: SettingsFactory
) -> None:
    """Usage moves without any catalog change: the fingerprint check never skips the read."""
    target = history_db()
    snapshot = read_catalog(make_settings(target, query_history=True))
    summary = SnapshotSummary.of(snapshot)
    assert check_unchanged(make_settings(target), SnapshotSummary.of(read_catalog(make_settings(target)))).unchanged
    check = check_unchanged(make_settings(target, query_history=True), summary)
    assert not check.unchanged and check.reason == "`query_history` is read at every sync"
