"""Odd names become distinct, stable asset keys with the right `dagster/table_name`, and hostile
names are only ever data: a table called `x"; DROP TABLE y; --` syncs and nothing is dropped.
"""

import re
from collections.abc import Iterator, Sequence

import dagster as dg
import pytest
from psycopg2 import sql

from dagster_postgres_connection import build_postgres_connection_defs
from dagster_postgres_connection.access.grants import quote_ident
from dagster_postgres_connection.catalog.connection import (
    catalog_transaction,
    create_catalog_engine,
)
from dagster_postgres_connection.observe.queries import row_counts
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.reliability.conftest import PASSWORD_ENV, SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget

INJECTION = 'x"; DROP TABLE victim; --'
SCHEMAS = ["odd", "Sales Data", "weird.schema", "a/b", "ünïcödé", "select", "inj'; DROP SCHEMA odd CASCADE; --"]
TABLES = [
    "UPPER", "MixedCase", "mixedcase", "with space", 'with "quote"', "it's", "dot.ted", "slash/ed",
    "émoji 🚀", "日本語", "select", "from", "table", "user", "é" * 31 + "x",  # 63 bytes, the maximum
    INJECTION, "y'); DELETE FROM victim; --", "orders",
]
COLUMNS = ["id", "Col 1", "sélect", 'q"uote', "order"]


def _create_odd_catalog(server: EmbeddedPostgres, target: PgTarget) -> list[tuple[str, str]]:
    """Every table name in every schema, each with the odd columns; returns (schema, name) pairs."""
    statements: list[sql.Composable] = [sql.SQL("CREATE TABLE public.victim (id int)")]
    created = []
    columns = sql.SQL(", ").join(
        sql.SQL("{} int PRIMARY KEY" if i == 0 else "{} text").format(sql.Identifier(c)) for i, c in enumerate(COLUMNS)
    )
    for schema in SCHEMAS:
        statements.append(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table in TABLES if schema == "odd" else ["orders", INJECTION, "MixedCase"]:
            statements.append(sql.SQL("CREATE TABLE {}.{} ({})").format(sql.Identifier(schema), sql.Identifier(table), columns))
            created.append((schema, table))
        statements.append(
            sql.SQL("GRANT USAGE ON SCHEMA {s} TO {r}; GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}").format(
                s=sql.Identifier(schema), r=sql.Identifier(target.user)
            )
        )
    server.execute(sql.SQL("; ").join(statements), target.database)
    return created


def _sync(target: PgTarget, databases: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv(PASSWORD_ENV, target.password)
    return build_postgres_connection_defs(
        name="odd", host=target.host, port=target.port, username=target.user, password=dg.EnvVar(PASSWORD_ENV),
        databases=list(databases),
        filters={"schemas": {"include": [re.escape(s) for s in SCHEMAS]}},
    )


@pytest.fixture(name="odd_databases", scope="module")
def odd_databases_fixture(pagila_server: EmbeddedPostgres) -> Iterator[tuple[list[PgTarget], list[tuple[str, str]]]]:
    from dagster_postgres_connection_tests.conftest import make_target

    targets, created = [], []
    for name in ("odd_names_1", "Odd Names 2 🚀"):
        pagila_server.drop_database(name)
        pagila_server.create_database(name)
        pagila_server.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO dagster_reader").format(sql.Identifier(name)))
        target = make_target(pagila_server, name)
        created = _create_odd_catalog(pagila_server, target)
        targets.append(target)
    yield targets, created
    for target in targets:
        pagila_server.drop_database(target.database)


def test_odd_names_become_distinct_stable_keys_with_correct_table_names(
    odd_databases: tuple[list[PgTarget], list[tuple[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    targets, created = odd_databases
    databases = [t.database for t in targets]
    defs = _sync(targets[0], databases, monkeypatch)
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    expected = {dg.AssetKey(["odd", db, schema, name]): f"{db}.{schema}.{name}" for db in databases for schema, name in created}
    assert set(specs) == set(expected)
    assert len(specs) == len(created) * len(databases)  # same names in other schemas/databases stay distinct
    for key, table_name in expected.items():
        metadata = specs[key].metadata
        assert metadata["dagster/table_name"] == table_name
        assert [c.name for c in metadata["dagster/column_schema"].columns] == COLUMNS
    # Stable: a second sync gives the very same keys and table names.
    again = {spec.key: spec.metadata["dagster/table_name"] for spec in _sync(targets[0], databases, monkeypatch).resolve_all_asset_specs()}
    assert again == expected


def test_hostile_names_are_never_executed(
    pagila_server: EmbeddedPostgres, odd_databases: tuple[list[PgTarget], list[tuple[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    targets, _ = odd_databases
    _sync(targets[0], [targets[0].database], monkeypatch)
    for target in targets:
        assert pagila_server.query("SELECT to_regclass('public.victim') IS NOT NULL", database=target.database) == [(True,)]
        assert pagila_server.query(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'odd'", database=target.database
        ) == [(1,)]


def test_exact_row_counts_quote_hostile_names(
    pagila_server: EmbeddedPostgres,
    odd_databases: tuple[list[PgTarget], list[tuple[str, str]]],
    make_settings: SettingsFactory,
) -> None:
    """The one place identifiers enter SQL text (observe's exact counts), through our session."""
    target = odd_databases[0][0]
    hostile = [("odd", INJECTION), ("odd", "y'); DELETE FROM victim; --"), (SCHEMAS[-1], INJECTION), ("select", "MixedCase")]
    pagila_server.execute(
        sql.SQL("INSERT INTO {} (id) VALUES (1), (2)").format(sql.Identifier("odd", INJECTION)), target.database
    )
    settings = make_settings(target)
    engine, _ = create_catalog_engine(settings, target.database)
    try:
        with catalog_transaction(engine, settings, target.database) as conn:
            counts = dict(conn.execute(row_counts(hostile)).tuples().all())
    finally:
        engine.dispose()
        pagila_server.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier("odd", INJECTION)), target.database)
    assert counts == {0: 2, 1: 0, 2: 0, 3: 0}
    assert pagila_server.query("SELECT to_regclass('public.victim') IS NOT NULL", database=target.database) == [(True,)]


def test_grant_statements_quote_hostile_names() -> None:
    """The GRANT lines we print for users to paste must not be injectable either."""
    assert quote_ident(INJECTION) == '"x""; DROP TABLE victim; --"'
    assert quote_ident("MixedCase") == '"MixedCase"' and quote_ident("select") == '"select"'


# Filters see the exact names too: a regex for one odd name selects it and nothing else.
@pytest.mark.parametrize("name", ["with space", 'with "quote"', "émoji 🚀", INJECTION, "dot.ted"])
def test_an_escaped_pattern_selects_exactly_that_odd_name(
    odd_databases: tuple[list[PgTarget], list[tuple[str, str]]], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    targets, _ = odd_databases
    monkeypatch.setenv(PASSWORD_ENV, targets[0].password)
    defs = build_postgres_connection_defs(
        name="odd", host=targets[0].host, port=targets[0].port, username=targets[0].user,
        password=dg.EnvVar(PASSWORD_ENV), databases=[targets[0].database],
        filters={"schemas": {"include": ["odd"]}, "tables": {"include": [re.escape(name)]}},
    )
    assert [spec.key.path[-1] for spec in defs.resolve_all_asset_specs()] == [name]
