"""Session-wide real PostgreSQL servers (16 and 18) with Pagila and a read-only role.

``DPC_PG_VERSIONS=18`` (or ``16``, ``16,18``) narrows the versions the suite runs against.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from psycopg2 import sql
from sqlalchemy.engine import Connection, Engine

from dagster_postgres_connection.testing import SUPPORTED_VERSIONS, EmbeddedPostgres
from dagster_postgres_connection_tests.debian_postgres import (  # noqa: F401 (fixture, used by name)
    debian_postgres_fixture,
)
from dagster_postgres_connection_tests.utils import (
    PgTarget,
    StatementCounter,
    count_statements,
)

READER_ROLE = "dagster_reader"
READER_PASSWORD = "s3cr3t-Reader-pw!"
PAGILA_DATABASE = "pagila"
PAGILA_TEMPLATE = "pagila_template"


def _pg_versions() -> list[int]:
    raw = os.environ.get("DPC_PG_VERSIONS", "").replace(",", " ").split()
    if not raw:
        return list(SUPPORTED_VERSIONS)
    if not all(v.isdigit() and int(v) in SUPPORTED_VERSIONS for v in raw):
        raise pytest.UsageError(
            f"DPC_PG_VERSIONS={os.environ['DPC_PG_VERSIONS']!r}: use some of {SUPPORTED_VERSIONS}"
        )
    return [int(v) for v in raw]


def make_target(server: EmbeddedPostgres, database: str) -> PgTarget:
    return PgTarget(
        version=server.version,
        host=server.host,
        port=server.port,
        socket_dir=server.socket_dir,
        database=database,
        user=READER_ROLE,
        password=READER_PASSWORD,
        superuser_url=server.url(database),
    )


@pytest.fixture(name="pg_server", scope="session", params=_pg_versions(), ids=lambda v: f"pg{v}")
def pg_server_fixture(request: pytest.FixtureRequest) -> Iterator[EmbeddedPostgres]:
    """A running server per PostgreSQL version, started once per session.

    pytest runs all tests of one version before starting the next, so only one is up at a
    time. Cleanup: ``with`` on teardown (also after Ctrl-C), an atexit hook, and a watchdog
    process that stops the server and deletes its folder if pytest gets killed.
    """
    with EmbeddedPostgres(version=request.param) as server:
        yield server


@pytest.fixture(name="pagila_server", scope="session")
def pagila_server_fixture(pg_server: EmbeddedPostgres) -> EmbeddedPostgres:
    """``pg_server`` with Pagila in ``pagila`` (a copy of ``pagila_template``), the read-only
    role ``dagster_reader`` granted on both (Dagster+ recipe), and passwords enforced for
    every role but ``postgres``.

    ``pagila_template`` is a real template (``IS_TEMPLATE``, no connections allowed), like
    ``template0`` on a real server; tests that change data or DDL use ``fresh_database``.
    """
    pg_server.load_pagila(PAGILA_TEMPLATE)
    pg_server.create_readonly_role(READER_ROLE, READER_PASSWORD, databases=[PAGILA_TEMPLATE])
    pg_server.execute(
        sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
            sql.Identifier(PAGILA_TEMPLATE)
        )
    )
    pg_server.create_database(PAGILA_DATABASE, template=PAGILA_TEMPLATE)
    pg_server.create_readonly_role(READER_ROLE, READER_PASSWORD, databases=[PAGILA_DATABASE])
    pg_server.require_passwords()
    return pg_server


@pytest.fixture(name="pagila", scope="session")
def pagila_fixture(pagila_server: EmbeddedPostgres) -> PgTarget:
    """The shared ``pagila`` database: read it, don't change it."""
    return make_target(pagila_server, PAGILA_DATABASE)


@pytest.fixture(name="fresh_database")
def fresh_database_fixture(
    pagila_server: EmbeddedPostgres,
) -> Iterator[Callable[..., PgTarget]]:
    """Factory ``fresh_database(name=None) -> PgTarget``: a private Pagila copy (~0.1 s).

    Made with ``CREATE DATABASE .. TEMPLATE pagila_template`` (grants included) and dropped
    when the test ends.
    """
    created: list[str] = []

    def make(name: str | None = None) -> PgTarget:
        name = name or f"fresh_{secrets.token_hex(4)}"
        pagila_server.create_database(name, template=PAGILA_TEMPLATE)
        created.append(name)
        pagila_server.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(READER_ROLE)
            )
        )
        return make_target(pagila_server, name)

    yield make
    for name in created:
        pagila_server.drop_database(name)


@pytest.fixture(name="statement_counter")
def statement_counter_fixture() -> Callable[
    [Engine | Connection | type[Engine]], AbstractContextManager[StatementCounter]
]:
    """``count_statements`` from ``utils``: ``with statement_counter(engine) as c: ...``."""
    return count_statements
