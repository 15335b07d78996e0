"""Our batched key queries agree with SQLAlchemy's Inspector, the reference reflection.

The reader takes primary, unique and foreign keys from one statement per database
(`queries.LIST_KEYS`, `queries.LIST_FOREIGN_KEYS`) because the Inspector's `get_multi_*` calls
cost two heavy statements per schema (benchmarks/README.md). This test holds them to the
Inspector's answers, relation by relation, on Pagila and on awkward keys of our own.
"""

from typing import Any

import dagster as dg
import pytest
from sqlalchemy import create_engine, inspect

from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.utils import PgTarget

PASSWORD_ENV = "DPC_KEYS_TEST_PASSWORD"

AWKWARD_KEYS = """
CREATE SCHEMA "Sales EU";
CREATE TABLE "Sales EU"."Order" ("Region" text, "No." int, note text UNIQUE,
    PRIMARY KEY ("No.", "Region"), CONSTRAINT "two col unique" UNIQUE (note, "Region"));
CREATE TABLE "Sales EU".line (id int PRIMARY KEY, order_no int, region text,
    FOREIGN KEY (order_no, region) REFERENCES "Sales EU"."Order" ("No.", "Region"),
    film_id int REFERENCES public.film (film_id));
CREATE TABLE public.keyless (a int, b int);
GRANT USAGE ON SCHEMA "Sales EU" TO dagster_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA "Sales EU", public TO dagster_reader;
"""


def inspector_keys(superuser_url: Any, schemas: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    engine = create_engine(superuser_url)
    try:
        inspector = inspect(engine)
        keys: dict[tuple[str, str], dict[str, Any]] = {}
        for schema in schemas:
            primary = inspector.get_multi_pk_constraint(schema=schema)
            unique = inspector.get_multi_unique_constraints(schema=schema)
            # Default search-path handling: referred_schema is None for tables found on the search path
            # (public); with ignore_search_path=True it wrongly reports the constrained table's schema.
            foreign = inspector.get_multi_foreign_keys(schema=schema)
            for (_, name), pk in primary.items():
                keys[(schema, name)] = {
                    "primary_key": list(pk["constrained_columns"]),
                    "unique": sorted((uc["name"], tuple(uc["column_names"])) for uc in unique.get((schema, name), ())),
                    "foreign": sorted(
                        (fk["name"], tuple(fk["constrained_columns"]), fk["referred_schema"] or "public",
                         fk["referred_table"], tuple(fk["referred_columns"]))
                        for fk in foreign.get((schema, name), ())
                    ),
                }
        return keys
    finally:
        engine.dispose()


def our_keys(snapshot: PostgresCatalogSnapshot) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (r.schema, r.name): {
            "primary_key": list(r.primary_key),
            "unique": sorted((uc.name, tuple(uc.columns)) for uc in r.unique_constraints),
            "foreign": sorted(
                (fk.name, tuple(fk.columns), fk.referred_schema, fk.referred_table, tuple(fk.referred_columns))
                for fk in r.foreign_keys
            ),
        }
        for r in snapshot.relations()
        if r.kind.value in ("table", "partitioned_table", "foreign_table")
    }


def test_keys_match_the_inspector(
    fresh_database: Any, pagila_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    target: PgTarget = fresh_database()
    pagila_server.execute(AWKWARD_KEYS, target.database)
    monkeypatch.setenv(PASSWORD_ENV, target.password)
    settings = build_postgres_connection_settings(
        name="keys", host=target.host, port=target.port, username=target.user,
        password=dg.EnvVar(PASSWORD_ENV), databases=[target.database], expose_partitions=True,
    )
    ours = our_keys(read_catalog(settings))
    reference = inspector_keys(target.superuser_url, ["public", "Sales EU"])

    assert set(ours) == set(reference)
    for relation, keys in reference.items():
        assert ours[relation] == keys, relation
    # The awkward cases really were exercised.
    assert ours[("Sales EU", "Order")]["primary_key"] == ["No.", "Region"]
    assert ("two col unique", ("note", "Region")) in ours[("Sales EU", "Order")]["unique"]
    assert any(fk[1] == ("order_no", "region") for fk in ours[("Sales EU", "line")]["foreign"])
    assert ours[("public", "keyless")] == {"primary_key": [], "unique": [], "foreign": []}
