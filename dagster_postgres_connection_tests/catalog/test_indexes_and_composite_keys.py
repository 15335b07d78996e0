"""Indexes keep what changes their meaning (order, INCLUDE, a partial index's WHERE), and a
composite foreign key is one key, in the records and in Dagster's column metadata.

SQLAlchemy's Inspector is the reference for both: `get_multi_indexes` (column_sorting,
postgresql_where, postgresql_include) and `get_multi_foreign_keys`.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from dagster._core.definitions.metadata import TableMetadataSet
from sqlalchemy import create_engine, inspect

from dagster_postgres_connection import PostgresMetadataSet
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.catalog.helpers import (
    database_with,
    key,
    read,
    relation,
    specs_by_key,
)
from dagster_postgres_connection_tests.utils import PgTarget

DDL = """
CREATE SCHEMA shop;
CREATE TABLE shop.region (country text, code text, name text, PRIMARY KEY (country, code));
CREATE TABLE shop.customer (
    id int PRIMARY KEY,
    email text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    country text, region_code text,
    score numeric, signed_up timestamptz,
    CONSTRAINT customer_region_fk FOREIGN KEY (country, region_code) REFERENCES shop.region (country, code)
);
-- unique only among active customers: `email` is not a unique column
CREATE UNIQUE INDEX customer_active_email ON shop.customer (email) WHERE active;
CREATE INDEX customer_covering ON shop.customer (id) INCLUDE (email, score);
CREATE INDEX customer_recent ON shop.customer (signed_up DESC, score NULLS FIRST);
CREATE INDEX customer_desc_nulls_last ON shop.customer (score DESC NULLS LAST);
CREATE UNIQUE INDEX customer_region_nnd ON shop.customer (country, region_code) NULLS NOT DISTINCT;
-- unique indexes without constraints: which make a column unique
CREATE TABLE shop.account (id int, "Code" text, email text, nickname text, "user" text, handle text);
CREATE UNIQUE INDEX account_code ON shop.account ("Code");
CREATE UNIQUE INDEX account_user ON shop.account ("user");
CREATE UNIQUE INDEX account_lower_email ON shop.account (lower(email));
CREATE UNIQUE INDEX account_nickname ON shop.account (nickname) WHERE nickname IS NOT NULL;
CREATE UNIQUE INDEX account_id_handle ON shop.account (id, handle);
CREATE INDEX account_handle ON shop.account (handle);
"""


@pytest.fixture(name="shop", scope="module")
def shop_fixture(pagila_server: EmbeddedPostgres, pagila: PgTarget) -> Iterator[PgTarget]:
    with database_with(pagila_server, "indexes_fixture", DDL, "shop") as target:
        yield target


@pytest.fixture(name="snapshot", scope="module")
def snapshot_fixture(shop: PgTarget) -> PostgresCatalogSnapshot:
    return read(shop)


def inspector_indexes(target: PgTarget) -> dict[str, dict[str, Any]]:
    engine = create_engine(target.superuser_url)
    try:
        indexes = inspect(engine).get_multi_indexes(schema="shop")
    finally:
        engine.dispose()
    return {index["name"]: index for index in indexes[("shop", "customer")]}


def test_indexes_keep_order_include_and_predicate_as_the_inspector_reads_them(
    snapshot: PostgresCatalogSnapshot, shop: PgTarget
) -> None:
    ours = {index.name: index for index in relation(snapshot, "shop", "customer").indexes}
    reference = inspector_indexes(shop)
    assert set(ours) == set(reference) | {"customer_pkey"}  # the Inspector leaves primary keys out
    for name, theirs in reference.items():
        index = ours[name]
        options = theirs.get("dialect_options", {})
        assert index.unique == theirs["unique"], name
        assert list(index.columns) == theirs["column_names"], name
        assert index.predicate == options.get("postgresql_where"), name
        assert list(index.include_columns) == list(options.get("postgresql_include", [])), name
        assert index.nulls_not_distinct == options.get("postgresql_nulls_not_distinct", False), name
        sorting = {
            column: tuple(word.lower().replace(" ", "_") for word in _words(ordering))
            for column, ordering in zip(index.columns, index.orderings, strict=True)
            if ordering
        }
        assert sorting == dict(theirs.get("column_sorting", {})), name

    # The cases really were exercised, with the values Postgres prints.
    assert ours["customer_active_email"].predicate == "active"
    assert ours["customer_active_email"].partial and ours["customer_active_email"].unique
    assert list(ours["customer_covering"].include_columns) == ["email", "score"]
    assert list(ours["customer_recent"].orderings) == ["DESC", "NULLS FIRST"]
    assert list(ours["customer_desc_nulls_last"].orderings) == ["DESC NULLS LAST"]
    assert ours["customer_region_nnd"].nulls_not_distinct
    assert list(ours["customer_pkey"].orderings) == [""]


def _words(ordering: str) -> list[str]:
    """`DESC NULLS LAST` -> ["DESC", "NULLS LAST"], the Inspector's column_sorting words once lowercased."""
    words = ordering.split()
    result = []
    while words:
        word = words.pop(0)
        result.append(f"{word} {words.pop(0)}" if word == "NULLS" else word)
    return result


def test_index_metadata_shows_the_whole_index_and_a_partial_unique_index_makes_no_unique_column(
    snapshot: PostgresCatalogSnapshot, shop: PgTarget
) -> None:
    spec = specs_by_key(shop, snapshot)[key(shop, "shop", "customer")]
    metadata = PostgresMetadataSet.extract(spec.metadata)
    assert (metadata.indexes or "").splitlines() == [
        "customer_active_email: btree (email) WHERE active, unique (partial)",
        "customer_covering: btree (id) INCLUDE (email, score)",
        "customer_desc_nulls_last: btree (score DESC NULLS LAST)",
        "customer_pkey: btree (id), primary key",
        "customer_recent: btree (signed_up DESC, score NULLS FIRST)",
        "customer_region_nnd: btree (country, region_code), unique, nulls not distinct",
    ]
    assert (metadata.index_definitions or "").splitlines() == [
        "CREATE UNIQUE INDEX customer_active_email ON shop.customer USING btree (email) WHERE active",
        "CREATE INDEX customer_covering ON shop.customer USING btree (id) INCLUDE (email, score)",
        "CREATE INDEX customer_desc_nulls_last ON shop.customer USING btree (score DESC NULLS LAST)",
        "CREATE UNIQUE INDEX customer_pkey ON shop.customer USING btree (id)",
        "CREATE INDEX customer_recent ON shop.customer USING btree (signed_up DESC, score NULLS FIRST)",
        "CREATE UNIQUE INDEX customer_region_nnd ON shop.customer USING btree (country, region_code) NULLS NOT DISTINCT",
    ]
    schema = TableMetadataSet.extract(spec.metadata).column_schema
    assert schema is not None
    columns = {column.name: column for column in schema.columns}
    assert columns["email"].constraints.unique is False  # unique only WHERE active
    assert columns["id"].constraints.unique is True


def test_a_composite_foreign_key_is_one_key(snapshot: PostgresCatalogSnapshot, shop: PgTarget) -> None:
    (foreign_key,) = relation(snapshot, "shop", "customer").foreign_keys
    assert (foreign_key.name, list(foreign_key.columns), list(foreign_key.referred_columns)) == (
        "customer_region_fk", ["country", "region_code"], ["country", "code"]
    )
    engine = create_engine(shop.superuser_url)
    try:
        (theirs,) = inspect(engine).get_foreign_keys("customer", schema="shop")
    finally:
        engine.dispose()
    assert (theirs["constrained_columns"], theirs["referred_columns"]) == (
        list(foreign_key.columns), list(foreign_key.referred_columns)
    )

    spec = specs_by_key(shop, snapshot)[key(shop, "shop", "customer")]
    schema = TableMetadataSet.extract(spec.metadata).column_schema
    assert schema is not None
    columns = {column.name: column for column in schema.columns}
    whole_key = "foreign key (country, region_code) -> shop.region(country, code)"
    for name in ("country", "region_code"):
        notes = [note for note in columns[name].constraints.other if note.startswith("foreign key")]
        assert notes == [whole_key], name
    assert "FOREIGN KEY (country, region_code) REFERENCES shop.region (country, code)" in schema.constraints.other
    # The key's columns are not unique on their own: a composite primary key makes no unique column.
    region = TableMetadataSet.extract(specs_by_key(shop, snapshot)[key(shop, "shop", "region")].metadata).column_schema
    assert region is not None
    assert not any(column.constraints.unique for column in region.columns)


def test_a_unique_index_over_one_column_alone_makes_it_unique(snapshot: PostgresCatalogSnapshot, shop: PgTarget) -> None:
    specs = specs_by_key(shop, snapshot)
    schema = TableMetadataSet.extract(specs[key(shop, "shop", "account")].metadata).column_schema
    assert schema is not None
    unique = {column.name for column in schema.columns if column.constraints.unique}
    # Not: an expression (lower(email)), a partial index (nickname), part of a two-column index
    # (id, handle), a plain index (handle).
    assert unique == {"Code", "user"}
    # Pagila's store has a unique index, not a constraint, on its manager.
    store = TableMetadataSet.extract(specs[key(shop, "public", "store")].metadata).column_schema
    assert store is not None
    assert {c.name for c in store.columns if c.constraints.unique} == {"store_id", "manager_staff_id"}


def test_names_the_records_repeat_are_one_copy(snapshot: PostgresCatalogSnapshot) -> None:
    """psycopg2 makes a new str per value; at 50k tables the copies of repeated names cost
    ~25 MB of the `sync` CLI's peak RSS (benchmarks/README.md), so the reader interns them."""
    customer, region = relation(snapshot, "shop", "customer"), relation(snapshot, "shop", "region")
    recent, covering = (next(i for i in customer.indexes if i.name == name) for name in ("customer_recent", "customer_covering"))
    assert recent.method == covering.method == "btree" and recent.method is covering.method
    foreign_key = next(fk for fk in customer.foreign_keys if fk.name == "customer_region_fk")
    assert foreign_key.referred_columns[0] is region.primary_key[0]  # `country`, read by two statements
    assert foreign_key.referred_schema is region.schema is customer.schema
    assert customer.owner is region.owner
    assert customer.select_grantees == region.select_grantees
    assert all(a is b for a, b in zip(customer.select_grantees, region.select_grantees, strict=True))
