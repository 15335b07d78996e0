"""Streamed statements (`stream_despite_drops`): rows arrive in batches, and a statement retried
after a concurrent DROP starts over, so the consumer must drop what the failed attempt gave it.

A relation dropped after our snapshot was taken makes deparse functions fail "could not open
relation with OID n" part-way through the rows; a function of the test raises exactly that
after 199 rows, once, as a DROP racing the read would.
"""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import text

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog.connection import (
    catalog_transaction,
    create_catalog_engine,
    stream_despite_drops,
)
from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.utils import PgTarget

PASSWORD_ENV = "DPC_STREAM_TEST_PASSWORD"

FAIL_ONCE = """
CREATE FUNCTION public.fails_until_ruled_out(vanished oid[]) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT 4242 = ANY(vanished) THEN
        RAISE EXCEPTION 'could not open relation with OID 4242';
    END IF;
    RETURN true;
END $$;
"""


def test_a_retried_statement_streams_its_rows_again_from_the_start(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = fresh_database()
    monkeypatch.setenv(PASSWORD_ENV, target.password)
    pagila_server.execute(FAIL_ONCE, target.database)
    settings = build_postgres_connection_settings(
        name="s", host=target.host, port=target.port, username=target.user,
        password=dg.EnvVar(PASSWORD_ENV), databases=[target.database],
    )
    statement = text(
        "SELECT g AS n FROM generate_series(1, 250) AS g "
        "WHERE g < 200 OR public.fails_until_ruled_out(CAST(:vanished AS oid[]))"
    )
    batches: list[list[int]] = []
    restarts = 0

    def consume(rows: Sequence[Any]) -> None:
        batches.append([row.n for row in rows])

    def restart() -> None:
        nonlocal restarts
        restarts += 1
        batches.clear()

    engine, _ = create_catalog_engine(settings, target.database)
    try:
        with catalog_transaction(engine, settings, target.database) as conn:
            stream_despite_drops(conn, statement, {}, batch_size=100, consume=consume, restart=restart)
            # The real column statement streams too, and the transaction is still usable.
            columns: list[Any] = []
            stream_despite_drops(
                conn, queries.LIST_COLUMNS, {"schemas": ["public"]}, batch_size=50,
                consume=columns.extend, restart=columns.clear,
            )
    finally:
        engine.dispose()

    assert restarts == 1
    assert [len(batch) for batch in batches] == [100, 100, 50]
    assert [n for batch in batches for n in batch] == list(range(1, 251))  # once each, in order
    actor = sorted((row.position, row.name) for row in columns if row.relation == "actor")
    assert [name for _, name in actor] == ["actor_id", "first_name", "last_name", "last_update"]
