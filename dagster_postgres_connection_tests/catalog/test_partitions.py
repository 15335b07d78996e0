"""Partitions rolled up into one asset (or exposed on request); legacy inheritance kept apart."""

from collections.abc import Callable, Iterator

import dagster as dg
import pytest

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

DAILY_PARTITIONS = 30

PARTITIONS_DDL = f"""
CREATE SCHEMA archive;
CREATE TABLE public.events (id bigint, region text, at date) PARTITION BY RANGE (at);
CREATE TABLE public.events_2024 PARTITION OF public.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (region);
CREATE TABLE public.events_2024_eu PARTITION OF public.events_2024 FOR VALUES IN ('eu');
CREATE TABLE public.events_2024_us PARTITION OF public.events_2024 FOR VALUES IN ('us');
CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE TABLE archive.events_2023 PARTITION OF public.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
INSERT INTO public.events SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, DATE '2023-01-01' + (i % 1000)
    FROM generate_series(1, 3000) AS i;
CREATE TABLE public.by_hash (id int) PARTITION BY HASH (id);
{"".join(f"CREATE TABLE public.by_hash_{i} PARTITION OF public.by_hash FOR VALUES WITH (MODULUS 4, REMAINDER {i});" for i in range(4))}
CREATE TABLE public.by_list (code text) PARTITION BY LIST (code);
CREATE TABLE public.by_list_ab PARTITION OF public.by_list FOR VALUES IN ('a', 'b');
CREATE TABLE public.daily (d date) PARTITION BY RANGE (d);
{"".join(f"CREATE TABLE public.daily_{i:02d} PARTITION OF public.daily FOR VALUES FROM (DATE '2024-01-01' + {i}) TO (DATE '2024-01-01' + {i + 1});" for i in range(DAILY_PARTITIONS))}
CREATE TABLE public.cities (name text, population int);
CREATE TABLE public.capitals (state text) INHERITS (public.cities);
ANALYZE;
"""


@pytest.fixture(name="partitioned", scope="module")
def partitioned_fixture(pagila_server: EmbeddedPostgres, pagila: PgTarget) -> Iterator[PgTarget]:
    with database_with(pagila_server, "partitions_fixture", PARTITIONS_DDL, "public", "archive") as target:
        yield target


@pytest.fixture(name="snapshot", scope="module")
def snapshot_fixture(partitioned: PgTarget) -> PostgresCatalogSnapshot:
    # `archive` is filtered out: its partition still counts towards `public.events`.
    return read(partitioned, filters={"schemas": {"exclude": ["archive"]}})


def ours(spec: dg.AssetSpec) -> PostgresMetadataSet:
    return PostgresMetadataSet.extract(spec.metadata)


def test_pagila_payment_is_one_asset_with_its_partitions_in_metadata(
    pagila: PgTarget, pagila_server: EmbeddedPostgres
) -> None:
    specs = specs_by_key(pagila)
    assert not [k for k in specs if k.path[-1].startswith("payment_p")]
    payment = ours(specs[key(pagila, "public", "payment")])
    assert (payment.partition_strategy, payment.partition_key, payment.partition_count) == ("range", "payment_date", 7)
    bounds = (payment.partition_bounds or "").splitlines()
    assert len(bounds) == 7
    assert bounds[0].startswith("payment_p2022_01: FOR VALUES FROM ('2022-01-01")
    rows, pages = pagila_server.query(
        "SELECT sum(reltuples)::bigint, sum(relpages)::bigint FROM pg_class WHERE relname LIKE 'payment\\_p2022\\_%' AND relkind = 'r'",
        database=pagila.database,
    )[0]
    assert payment.row_estimate == rows > 0
    assert payment.size_bytes is not None and payment.size_bytes >= pages * 8192


def test_range_root_rolls_up_sub_partitions_and_other_schemas(partitioned: PgTarget, snapshot: PostgresCatalogSnapshot) -> None:
    specs = specs_by_key(partitioned, snapshot, filters={"schemas": {"exclude": ["archive"]}})
    names = {k.path[-1] for k in specs}
    assert "events" in names and not {n for n in names if n.startswith("events_")}
    events = ours(specs[key(partitioned, "public", "events")])
    assert (events.partition_strategy, events.partition_key) == ("range", "at")
    # Leaves: 2024_eu, 2024_us (under the LIST sub-partitioned 2024), 2025, default, archive.events_2023.
    assert events.partition_count == 5
    assert events.row_estimate == 3000
    assert (events.partition_bounds or "").splitlines() == [
        "events_2023: FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')",
        "events_2024: FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
        "  events_2024_eu: FOR VALUES IN ('eu')",
        "  events_2024_us: FOR VALUES IN ('us')",
        "events_2025: FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        "events_default: DEFAULT",
    ]
    root = relation(snapshot, "public", "events").partitioning
    assert root is not None
    sub = next(p for p in root.partitions if p.name == "events_2024")
    assert (sub.is_leaf, sub.partition_key, sub.level) == (False, "LIST (region)", 1)


def test_hash_and_list_strategies(partitioned: PgTarget, snapshot: PostgresCatalogSnapshot) -> None:
    specs = specs_by_key(partitioned, snapshot, filters={"schemas": {"exclude": ["archive"]}})
    by_hash = ours(specs[key(partitioned, "public", "by_hash")])
    assert (by_hash.partition_strategy, by_hash.partition_key, by_hash.partition_count) == ("hash", "id", 4)
    assert "by_hash_3: FOR VALUES WITH (modulus 4, remainder 3)" in (by_hash.partition_bounds or "")
    by_list = ours(specs[key(partitioned, "public", "by_list")])
    assert (by_list.partition_strategy, by_list.partition_count) == ("list", 1)
    assert by_list.partition_bounds == "by_list_ab: FOR VALUES IN ('a', 'b')"
    assert specs[key(partitioned, "public", "by_hash")].kinds == {"postgres", "table", "partitioned_table"}


def test_many_partitions_are_summarised(partitioned: PgTarget, snapshot: PostgresCatalogSnapshot) -> None:
    daily = ours(specs_by_key(partitioned, snapshot)[key(partitioned, "public", "daily")])
    assert daily.partition_count == DAILY_PARTITIONS
    lines = (daily.partition_bounds or "").splitlines()
    assert len(lines) == 21
    assert lines[0].startswith("daily_00: ") and lines[-1].startswith(f"daily_{DAILY_PARTITIONS - 1}: ")
    assert lines[10] == f"... {DAILY_PARTITIONS - 20} more ..."


def test_expose_partitions_makes_them_assets_under_their_parent(
    partitioned: PgTarget, snapshot: PostgresCatalogSnapshot
) -> None:
    specs = specs_by_key(
        partitioned, snapshot, filters={"schemas": {"exclude": ["archive"]}}, expose_partitions=True
    )
    sub = specs[key(partitioned, "public", "events_2024")]
    leaf = specs[key(partitioned, "public", "events_2024_eu")]
    assert {d.asset_key for d in sub.deps} == {key(partitioned, "public", "events")}
    assert {d.asset_key for d in leaf.deps} == {key(partitioned, "public", "events_2024")}
    assert sub.kinds == {"postgres", "table", "partitioned_table"}
    assert leaf.kinds == {"postgres", "table"}
    assert (ours(leaf).partition_of, ours(leaf).partition_bound) == ("public.events_2024", "FOR VALUES IN ('eu')")
    assert key(partitioned, "archive", "events_2023") not in specs  # still filtered out
    assert ours(specs[key(partitioned, "public", "events")]).partition_count == 5


def test_legacy_inheritance_children_stay_tables_with_their_parent_as_dep(
    partitioned: PgTarget, snapshot: PostgresCatalogSnapshot
) -> None:
    specs = specs_by_key(partitioned, snapshot)
    capitals = specs[key(partitioned, "public", "capitals")]
    assert {d.asset_key for d in capitals.deps} == {key(partitioned, "public", "cities")}
    assert ours(capitals).inherits_from == "public.cities"
    assert ours(capitals).partition_count is None
    assert not specs[key(partitioned, "public", "cities")].deps
    assert [c.name for c in relation(snapshot, "public", "capitals").columns] == ["name", "population", "state"]


def test_a_partitioned_table_without_partitions(fresh_database: Callable[..., PgTarget], pagila_server: EmbeddedPostgres) -> None:
    target = fresh_database()
    pagila_server.execute("CREATE TABLE public.empty_root (id int) PARTITION BY LIST (id)", target.database)
    empty = ours(specs_by_key(target)[key(target, "public", "empty_root")])
    assert (empty.partition_strategy, empty.partition_count, empty.partition_bounds) == ("list", 0, None)
