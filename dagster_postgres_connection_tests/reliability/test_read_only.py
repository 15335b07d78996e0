"""Read-only by construction: even a role that may write cannot write through our sessions."""

from collections.abc import Callable, Iterator

import pytest
from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.exc import InternalError

from dagster_postgres_connection.catalog.connection import (
    catalog_transaction,
    create_catalog_engine,
)
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.errors import PostgresCatalogReadError
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.reliability.conftest import SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget

WRITER = "dpc_writer"
WRITER_PASSWORD = "writer-Pw-42"

WRITES = [
    "INSERT INTO public.actor (first_name, last_name) VALUES ('x', 'y')",
    "UPDATE public.actor SET first_name = 'x'",
    "DELETE FROM public.payment",
    "CREATE TABLE public.intruder (id int)",
    "DROP TABLE public.film_actor",
    "TRUNCATE public.rental",
]


@pytest.fixture(name="writer_target")
def writer_target_fixture(pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget]) -> Iterator[PgTarget]:
    """A private Pagila copy and a role that owns its tables: it could write anything."""
    target = fresh_database()
    role = sql.Identifier(WRITER)
    if not pagila_server.query("SELECT 1 FROM pg_roles WHERE rolname = %s", [WRITER]):
        pagila_server.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(WRITER_PASSWORD)))
    pagila_server.execute(
        sql.SQL("GRANT ALL ON SCHEMA public TO {r}; GRANT ALL ON ALL TABLES IN SCHEMA public TO {r}").format(r=role),
        target.database,
    )
    yield PgTarget(
        version=target.version, host=target.host, port=target.port, socket_dir=target.socket_dir,
        database=target.database, user=WRITER, password=WRITER_PASSWORD, superuser_url=target.superuser_url,
    )
    pagila_server.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}").format(r=role), target.database)
    pagila_server.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {r}").format(r=role), target.database)


def _write_counts(pagila_server: EmbeddedPostgres, database: str) -> tuple[object, ...]:
    return pagila_server.query(
        "SELECT (SELECT count(*) FROM actor), (SELECT count(*) FROM payment), (SELECT count(*) FROM rental),"
        " to_regclass('public.intruder') IS NULL, to_regclass('public.film_actor') IS NOT NULL",
        database=database,
    )[0]


@pytest.mark.parametrize("statement", WRITES, ids=lambda s: s.split()[0].lower())
def test_a_write_inside_the_catalog_transaction_fails(
    writer_target: PgTarget, make_settings: SettingsFactory, pagila_server: EmbeddedPostgres, statement: str
) -> None:
    before = _write_counts(pagila_server, writer_target.database)
    settings = make_settings(writer_target)
    engine, _ = create_catalog_engine(settings, writer_target.database)
    try:
        with pytest.raises(PostgresCatalogReadError, match="read-only transaction"), catalog_transaction(
            engine, settings, writer_target.database
        ) as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()
    assert _write_counts(pagila_server, writer_target.database) == before


def test_a_session_is_read_only_even_outside_our_transaction(
    writer_target: PgTarget, make_settings: SettingsFactory, pagila_server: EmbeddedPostgres
) -> None:
    """`default_transaction_read_only` is a session option: autocommit statements can't write either."""
    before = _write_counts(pagila_server, writer_target.database)
    settings = make_settings(writer_target, statement_timeout_seconds=7, lock_timeout_seconds=3)
    engine, _ = create_catalog_engine(settings, writer_target.database)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            settings_shown = {
                name: conn.execute(text(f"SHOW {name}")).scalar_one()
                for name in ("default_transaction_read_only", "statement_timeout", "lock_timeout")
            }
            with pytest.raises(InternalError, match="read-only transaction"):
                conn.execute(text(WRITES[0]))
    finally:
        engine.dispose()
    assert settings_shown == {"default_transaction_read_only": "on", "statement_timeout": "7s", "lock_timeout": "3s"}
    assert _write_counts(pagila_server, writer_target.database) == before


def test_the_catalog_transaction_is_repeatable_read_and_read_only(
    pagila: PgTarget, make_settings: SettingsFactory
) -> None:
    settings = make_settings(pagila)
    engine, _ = create_catalog_engine(settings, pagila.database)
    try:
        with catalog_transaction(engine, settings, pagila.database) as conn:
            shown = conn.execute(text("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')")).one()
    finally:
        engine.dispose()
    assert tuple(shown) == ("repeatable read", "on")


def test_a_sync_as_a_writer_changes_nothing(
    writer_target: PgTarget, make_settings: SettingsFactory, pagila_server: EmbeddedPostgres
) -> None:
    before = _write_counts(pagila_server, writer_target.database)
    snapshot = read_catalog(make_settings(writer_target))
    assert len(snapshot.relations()) > 20
    assert _write_counts(pagila_server, writer_target.database) == before
