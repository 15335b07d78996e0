"""Partial failure: what the role cannot read is skipped with a warning naming the object and
the missing privilege; everything else syncs, and the snapshot records what was skipped.
"""

import logging
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from psycopg2 import sql

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.reliability.conftest import SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget


def test_missing_privileges_and_a_dropped_database_are_skipped_and_reported(
    pagila_server: EmbeddedPostgres,
    fresh_database: Callable[..., PgTarget],
    make_settings: SettingsFactory,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    prefix = f"pf_{secrets.token_hex(3)}"
    main = fresh_database(f"{prefix}_a_main")
    no_connect = fresh_database(f"{prefix}_b_no_connect")
    dropped = fresh_database(f"{prefix}_c_dropped")
    reader = sql.Identifier(main.user)
    pagila_server.execute(
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC, {}").format(sql.Identifier(no_connect.database), reader)
    )
    pagila_server.execute(
        sql.SQL(
            "CREATE SCHEMA hidden; CREATE TABLE hidden.salaries (id int);"  # no USAGE granted
            " REVOKE SELECT ON public.staff FROM {r}; REVOKE SELECT ON public.customer_list FROM {r}"
        ).format(r=reader),
        main.database,
    )

    def drop_the_last_database(database: str, event: str) -> None:
        # Databases are read in name order, one at a time here: drop the last as the first starts.
        if database == main.database and event == "start":
            pagila_server.drop_database(dropped.database)

    settings = make_settings(
        main, databases=None, max_concurrent_connections=1,
        filters={"databases": {"include": [f"{prefix}_.*"]}},
    )
    with caplog.at_level(logging.WARNING):
        snapshot = read_catalog(settings, on_progress=drop_the_last_database)

    reasons = {item.label: item.reason for item in snapshot.skipped}
    assert reasons.keys() == {
        no_connect.database,
        f"{main.database}.hidden",
        f"{main.database}.public.staff",
        f"{main.database}.public.customer_list",
        dropped.database,
    }
    assert f"role `dagster_reader` lacks CONNECT on database `{no_connect.database}`" in reasons[no_connect.database]
    assert "lacks USAGE on schema `hidden`" in reasons[f"{main.database}.hidden"]
    assert "lacks SELECT on table `public.staff`" in reasons[f"{main.database}.public.staff"]
    assert "lacks SELECT on view `public.customer_list`" in reasons[f"{main.database}.public.customer_list"]
    assert f"Database `{dropped.database}` does not exist (or was just dropped)" in reasons[dropped.database]

    # Everything else of the main database synced.
    assert [database.name for database in snapshot.databases] == [main.database]
    names = {relation.name for relation in snapshot.relations()}
    assert {"film", "actor", "rental", "payment", "film_list"} <= names
    assert not names & {"staff", "customer_list", "salaries"}

    # One warning per skipped object, naming it.
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    for label in reasons:
        assert any(f"`{label}`" in warning for warning in warnings), (label, warnings)

    # The snapshot keeps what was skipped, so a later load can still say it.
    path = tmp_path / "state"
    write_snapshot(snapshot, path)
    assert {item.label for item in load_snapshot(path).skipped} == reasons.keys()


def test_a_database_listed_explicitly_that_does_not_exist_is_skipped_not_fatal(
    pagila: PgTarget, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(pagila, databases=[pagila.database, "no_such_database"])
    with caplog.at_level(logging.WARNING):
        snapshot = read_catalog(settings)
    assert [database.name for database in snapshot.databases] == [pagila.database]
    (skipped,) = snapshot.skipped
    assert skipped.label == "no_such_database"
    assert "`no_such_database` does not exist" in skipped.reason and "fix `databases`" in skipped.reason
    assert any("`no_such_database`" in record.getMessage() for record in caplog.records)
