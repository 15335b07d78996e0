"""A real postgres_fdw foreign table (Debian's PostgreSQL has the extension; the bundled one has not).

The foreign server points back at the same server: the catalog shows the server, wrapper and
remote object options, and never the user mapping's password.
"""

import contextlib
import dataclasses
from collections.abc import Iterator

import psycopg2
import pytest
from dagster_shared.serdes import serialize_value

from dagster_postgres_connection import PostgresMetadataSet
from dagster_postgres_connection.testing import LOCALHOST
from dagster_postgres_connection_tests.catalog.helpers import key, read, specs_by_key

# The session fixture of the reliability tests (Debian PostgreSQL 15), shared rather than copied.
from dagster_postgres_connection_tests.debian_postgres import DebianPostgres
from dagster_postgres_connection_tests.utils import PgTarget

MAPPING_PASSWORD = "fdw-mapping-must-not-leak"


@pytest.fixture(name="fdw_target", scope="module")
def fdw_target_fixture(debian_postgres: DebianPostgres) -> Iterator[PgTarget]:
    target = debian_postgres.target
    database = "fdw_db"

    def superuser(dbname: str) -> contextlib.closing:
        conn = psycopg2.connect(host=LOCALHOST, port=target.port, user="postgres", dbname=dbname, sslmode="disable")
        conn.autocommit = True
        return contextlib.closing(conn)

    with superuser("postgres") as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    try:
        with superuser(database) as conn, conn.cursor() as cur:
            cur.execute("CREATE EXTENSION postgres_fdw")
            cur.execute(
                "CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw "
                f"OPTIONS (host '{LOCALHOST}', port '{target.port}', dbname '{target.database}')"
            )
            cur.execute(
                f"CREATE USER MAPPING FOR {target.user} SERVER loopback "
                f"OPTIONS (user '{target.user}', password '{MAPPING_PASSWORD}')"
            )
            cur.execute(
                "CREATE FOREIGN TABLE public.remote_orders (id int, total numeric) "
                "SERVER loopback OPTIONS (schema_name 'public', table_name 'orders')"
            )
            cur.execute(f"GRANT SELECT ON public.remote_orders TO {target.user}")
        yield dataclasses.replace(target, database=database)
    finally:
        with superuser("postgres") as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_postgres_fdw_foreign_table(fdw_target: PgTarget) -> None:
    snapshot = read(fdw_target)
    spec = specs_by_key(fdw_target, snapshot)[key(fdw_target, "public", "remote_orders")]
    assert spec.kinds == {"postgres", "table", "foreign_table"}
    metadata = PostgresMetadataSet.extract(spec.metadata)
    assert (metadata.foreign_server, metadata.foreign_data_wrapper) == ("loopback", "postgres_fdw")
    assert metadata.foreign_server_options == f"host={LOCALHOST}, port={fdw_target.port}, dbname=tls_db"
    assert metadata.foreign_table_options == "schema_name=public, table_name=orders"
    assert MAPPING_PASSWORD not in serialize_value(snapshot) + repr(spec.metadata)
