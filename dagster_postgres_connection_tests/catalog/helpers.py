"""Reading a test database and building its specs, as the component does (no fixtures here)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from psycopg2 import sql

from dagster_postgres_connection.assets import build_asset_specs
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot, PostgresRelation
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection.translator import DagsterPostgresTranslator
from dagster_postgres_connection_tests.conftest import PAGILA_TEMPLATE, READER_ROLE, make_target
from dagster_postgres_connection_tests.utils import PgTarget

CONNECTION = "conn"
PASSWORD_ENV = "DPC_CATALOG_TEST_PASSWORD"


def settings_for(target: PgTarget, **options: Any) -> PostgresConnectionSettings:
    os.environ[PASSWORD_ENV] = target.password  # the reader reads it when connecting
    return build_postgres_connection_settings(
        name=CONNECTION, host=target.host, port=target.port, username=target.user,
        password=dg.EnvVar(PASSWORD_ENV), databases=[target.database], **options,
    )


def read(target: PgTarget, **options: Any) -> PostgresCatalogSnapshot:
    return read_catalog(settings_for(target, **options))


def relation(snapshot: PostgresCatalogSnapshot, schema: str, name: str) -> PostgresRelation:
    (database,) = snapshot.databases
    return snapshot.relations_by_key()[(database.name, schema, name)]


def specs_by_key(
    target: PgTarget,
    snapshot: PostgresCatalogSnapshot | None = None,
    translator: DagsterPostgresTranslator | None = None,
    **options: Any,
) -> dict[dg.AssetKey, dg.AssetSpec]:
    settings = settings_for(target, **options)
    snapshot = snapshot or read_catalog(settings)
    specs = build_asset_specs(snapshot, settings, translator or DagsterPostgresTranslator())
    return {spec.key: spec for spec in specs}


def key(target: PgTarget, schema: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([CONNECTION, target.database, schema, name])


def grant_schemas(server: EmbeddedPostgres, database: str, *schemas: str) -> None:
    """Lets the read-only role see new schemas (public is granted by the template)."""
    for schema in schemas:
        server.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {s} TO {r}; GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}").format(
                s=sql.Identifier(schema), r=sql.Identifier(READER_ROLE)
            ),
            database,
        )


@contextmanager
def database_with(server: EmbeddedPostgres, name: str, ddl: str, *schemas: str) -> Iterator[PgTarget]:
    """A Pagila copy with `ddl` run as the superuser and `schemas` granted to the reader; dropped after."""
    server.create_database(name, template=PAGILA_TEMPLATE)
    try:
        server.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(name), sql.Identifier(READER_ROLE)))
        server.execute(ddl, name)
        grant_schemas(server, name, *schemas)
        yield make_target(server, name)
    finally:
        server.drop_database(name)
