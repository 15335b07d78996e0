"""Catalog reads are batched: the statement count does not grow with the number of relations."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
from sqlalchemy.engine import Engine

from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.conftest import READER_PASSWORD, READER_ROLE
from dagster_postgres_connection_tests.utils import count_statements


def add_relations(server: EmbeddedPostgres, database: str, start: int, stop: int) -> None:
    """Tables with keys, FKs, comments, plus a view and a materialized view every tenth table."""
    ddl = []
    for i in range(start, stop):
        schema = f"s{i % 3}"
        ddl.append(
            f"CREATE TABLE {schema}.t{i} (id bigint PRIMARY KEY, code text UNIQUE, "
            f"parent_id bigint REFERENCES s0.t0(id), amount numeric(12,2), created timestamptz);"
            f"COMMENT ON TABLE {schema}.t{i} IS 'table {i}';"
        )
        if i % 10 == 0:
            ddl.append(f"CREATE VIEW {schema}.v{i} AS SELECT id, code FROM {schema}.t{i};")
            # access and index details read in statements of their own: as many rows, same statements
            ddl.append(
                f"ALTER TABLE {schema}.t{i} ENABLE ROW LEVEL SECURITY;"
                f"CREATE POLICY p{i} ON {schema}.t{i} FOR SELECT USING (amount > 0);"
                f"CREATE POLICY q{i} ON {schema}.t{i} AS RESTRICTIVE FOR UPDATE TO PUBLIC USING (true) WITH CHECK (id > 0);"
                f"GRANT SELECT ON {schema}.t{i} TO PUBLIC;"
                f"CREATE UNIQUE INDEX t{i}_partial ON {schema}.t{i} (code DESC) INCLUDE (amount) WHERE amount > 0;"
            )
            ddl.append(f"CREATE MATERIALIZED VIEW {schema}.m{i} AS SELECT count(*) AS n FROM {schema}.t{i};")
    server.execute("".join(ddl), database)
    server.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA s0, s1, s2 TO {READER_ROLE}", database)


@contextmanager
def reader_database(
    server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, name: str, *schemas: str
) -> Iterator[tuple[str, PostgresConnectionSettings]]:
    """A new empty database with `schemas` the read-only role may use, and the settings that read
    it as that role; dropped after."""
    database = f"{name}_{secrets.token_hex(3)}"
    server.create_database(database)
    try:
        server.execute(
            "".join(f"CREATE SCHEMA {schema};" for schema in schemas)
            + f"GRANT CONNECT ON DATABASE {database} TO {READER_ROLE};"
            f"GRANT USAGE ON SCHEMA {', '.join(schemas)} TO {READER_ROLE};",
            database,
        )
        monkeypatch.setenv("DPC_COUNT_PW", READER_PASSWORD)
        yield database, build_postgres_connection_settings(
            name=name, host=server.host, port=server.port, username=READER_ROLE,
            password=dg.EnvVar("DPC_COUNT_PW"), databases=[database],
        )
    finally:
        server.drop_database(database)


def read_counting_statements(settings: PostgresConnectionSettings) -> tuple[PostgresCatalogSnapshot, int]:
    """The catalog, and every statement any SQLAlchemy engine sent for it, counted independently of
    the reader's own counter."""
    with count_statements(Engine) as counter:
        snapshot = read_catalog(settings)
    return snapshot, counter.count


def test_statement_count_is_the_same_for_10_and_300_tables(
    pagila_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    with reader_database(pagila_server, monkeypatch, "scale", "s0", "s1", "s2") as (database, settings):
        pagila_server.execute("CREATE TABLE s0.t0 (id bigint PRIMARY KEY);", database)

        add_relations(pagila_server, database, 1, 10)
        small, small_statements = read_counting_statements(settings)

        add_relations(pagila_server, database, 10, 300)
        large, large_statements = read_counting_statements(settings)

        assert len(small.relations()) == 10  # t0..t9
        assert len(large.relations()) == 300 + 2 * 29  # t0..t299, plus a view and a matview per tenth table
        assert large_statements == small_statements
        assert large.statement_count == small.statement_count == small_statements
        assert small_statements <= 20
        columns = sum(len(r.columns) for r in large.relations())
        assert columns > 1500
        # The details really were read, for every such table
        assert sum(len(r.policies) for r in large.relations()) == 2 * 29  # t10..t290
        assert sum(1 for r in large.relations() if "PUBLIC" in r.select_grantees) == 29
        assert sum(1 for r in large.relations() for i in r.indexes if i.predicate and i.include_columns) == 29


def add_routines(server: EmbeddedPostgres, database: str, start: int, stop: int) -> None:
    """A plpgsql procedure, a SQL function and a trigger function with its trigger per table."""
    ddl = []
    for i in range(start, stop):
        ddl.append(
            f"CREATE TABLE s0.src{i} (id int, v text); CREATE TABLE s0.dst{i} (id int, v text);"
            f"CREATE PROCEDURE s0.move{i}() LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO s0.dst{i} (id, v) SELECT id, v FROM s0.src{i}; END $$;"
            f"CREATE FUNCTION s0.count{i}() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM s0.dst{i}';"
            f"CREATE FUNCTION s0.audit{i}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO s0.dst{i} VALUES (NEW.id, NEW.v); RETURN NEW; END $$;"
            f"CREATE TRIGGER audit{i} AFTER INSERT ON s0.src{i} FOR EACH ROW EXECUTE FUNCTION s0.audit{i}();"
        )
    server.execute("".join(ddl), database)
    server.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA s0 TO {READER_ROLE}", database)


def test_statement_count_is_the_same_for_few_and_many_routines(
    pagila_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    with reader_database(pagila_server, monkeypatch, "routines", "s0") as (database, settings):
        add_routines(pagila_server, database, 0, 2)
        few, few_statements = read_counting_statements(settings)

        add_routines(pagila_server, database, 2, 120)
        many, many_statements = read_counting_statements(settings)

        assert len(few.databases[0].routines) == 6
        assert len(many.databases[0].routines) == 360
        assert many_statements == few_statements == many.statement_count
        # every table written by its procedure and its trigger function, read by its count function
        written = [r for r in many.relations() if r.name.startswith("dst")]
        assert len(written) == 120 and all(len(r.written_by) == 2 and len(r.read_by) == 1 for r in written)
