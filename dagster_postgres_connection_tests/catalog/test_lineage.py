"""View lineage on real Postgres: exact deps from pg_depend, column lineage checked against it."""

import gc
from collections.abc import Callable, Iterator

import dagster as dg
import pytest
from dagster._core.definitions.metadata import TableMetadataSet
from sqlglot import exp

from dagster_postgres_connection.catalog._gc import PARSES_PER_COLLECTION, paused_gc
from dagster_postgres_connection.catalog.lineage import ViewDependencies, _column_lineage_of_views
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection.translator import DagsterPostgresTranslator, PostgresRelationProps
from dagster_postgres_connection_tests.catalog.helpers import (
    CONNECTION,
    database_with,
    key,
    read,
    relation,
    specs_by_key,
)
from dagster_postgres_connection_tests.utils import PgTarget

PAGILA_VIEW_DEPS = {
    "rental_by_category": {"category", "film", "film_category", "inventory", "payment", "rental"},
    "sales_by_film_category": {"category", "film", "film_category", "inventory", "payment", "rental"},
    "sales_by_store": {"address", "city", "country", "inventory", "payment", "rental", "staff", "store"},
    "actor_info": {"actor", "category", "film", "film_actor", "film_category"},
    "customer_list": {"address", "city", "country", "customer"},
    "staff_list": {"address", "city", "country", "staff"},
    "film_list": {"actor", "category", "film", "film_actor", "film_category"},
    "nicer_but_slower_film_list": {"actor", "category", "film", "film_actor", "film_category"},
}

# Views on views across schemas, a matview over a CTE, a function call, a union, an operator
# sqlglot cannot parse, and a schema (`staging`) the filters exclude.
LINEAGE_DDL = """
CREATE SCHEMA sales; CREATE SCHEMA reporting; CREATE SCHEMA staging;
CREATE TABLE sales.orders (id int PRIMARY KEY, customer_id int REFERENCES public.customer (customer_id),
                           amount numeric(10,2), ordered_at date);
CREATE TABLE staging.raw_events (id int, payload text);
CREATE FUNCTION sales.order_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM sales.orders';
CREATE VIEW sales.order_totals AS
    SELECT o.customer_id, sum(o.amount) AS total, count(*) AS n FROM sales.orders o GROUP BY o.customer_id;
CREATE VIEW reporting.customer_totals AS
    SELECT c.customer_id AS id, c.first_name || ' ' || c.last_name AS full_name, t.total
    FROM public.customer c JOIN sales.order_totals t ON t.customer_id = c.customer_id;
CREATE MATERIALIZED VIEW reporting.top_customers AS
    WITH ranked AS (SELECT ct.id, ct.total, rank() OVER (ORDER BY ct.total DESC) AS r FROM reporting.customer_totals ct)
    SELECT id AS customer, total AS spent FROM ranked WHERE r <= 10;
CREATE VIEW reporting.with_function AS
    SELECT sales.order_count() AS orders, now() AS at, e.payload FROM staging.raw_events e;
CREATE VIEW reporting.unioned AS
    SELECT id, amount FROM sales.orders UNION ALL SELECT id, NULL::numeric FROM staging.raw_events;
CREATE VIEW reporting.odd_operator AS
    SELECT e.id, e.payload ~>=~ 'm' AS late FROM staging.raw_events e;
CREATE VIEW reporting.on_partition AS SELECT p.amount FROM public.payment_p2022_01 p;
"""


@pytest.fixture(name="lineage_db", scope="module")
def lineage_db_fixture(pagila_server: EmbeddedPostgres, pagila: PgTarget) -> Iterator[PgTarget]:
    """A Pagila copy with LINEAGE_DDL (module-scoped: it is only read)."""
    with database_with(pagila_server, "lineage_fixture", LINEAGE_DDL, "sales", "reporting", "staging") as target:
        yield target


@pytest.fixture(name="lineage_snapshot", scope="module")
def lineage_snapshot_fixture(lineage_db: PgTarget) -> PostgresCatalogSnapshot:
    return read(lineage_db, filters={"schemas": {"exclude": ["staging"]}})


def deps_of(spec: dg.AssetSpec) -> set[dg.AssetKey]:
    return {dep.asset_key for dep in spec.deps}


def column_lineage_of(spec: dg.AssetSpec) -> dict[str, set[tuple[str, ...]]]:
    lineage = TableMetadataSet.extract(spec.metadata).column_lineage
    assert lineage is not None, spec.key
    return {
        column: {(*dep.asset_key.path[2:], dep.column_name) for dep in deps}
        for column, deps in lineage.deps_by_column.items()
    }


def test_pagila_views_depend_exactly_on_the_tables_they_read(pagila: PgTarget) -> None:
    specs = specs_by_key(pagila)
    for view, tables in PAGILA_VIEW_DEPS.items():
        assert deps_of(specs[key(pagila, "public", view)]) == {key(pagila, "public", t) for t in tables}, view
    # Tables have no deps; every view and matview has some: the graph is connected.
    assert all(not spec.deps for spec in specs.values() if "view" not in spec.kinds)


def test_pagila_column_lineage_of_rental_by_category(pagila: PgTarget) -> None:
    spec = specs_by_key(pagila)[key(pagila, "public", "rental_by_category")]
    assert column_lineage_of(spec) == {
        "category": {("public", "category", "name")},
        "total_sales": {("public", "payment", "amount")},  # the partitioned root, not a partition
    }


def test_views_on_views_across_schemas(lineage_db: PgTarget, lineage_snapshot: PostgresCatalogSnapshot) -> None:
    specs = specs_by_key(lineage_db, lineage_snapshot, filters={"schemas": {"exclude": ["staging"]}})
    assert deps_of(specs[key(lineage_db, "sales", "order_totals")]) == {key(lineage_db, "sales", "orders")}
    assert deps_of(specs[key(lineage_db, "reporting", "customer_totals")]) == {
        key(lineage_db, "public", "customer"),
        key(lineage_db, "sales", "order_totals"),
    }
    assert deps_of(specs[key(lineage_db, "reporting", "top_customers")]) == {
        key(lineage_db, "reporting", "customer_totals")
    }
    assert "materialized_view" in specs[key(lineage_db, "reporting", "top_customers")].kinds


def test_deps_on_excluded_relations_stay_in_the_graph(
    lineage_db: PgTarget, lineage_snapshot: PostgresCatalogSnapshot
) -> None:
    specs = specs_by_key(lineage_db, lineage_snapshot, filters={"schemas": {"exclude": ["staging"]}})
    raw_events = key(lineage_db, "staging", "raw_events")
    assert raw_events not in specs  # excluded by the filters...
    assert deps_of(specs[key(lineage_db, "reporting", "with_function")]) == {raw_events}  # ...but still a dep
    defs = dg.Definitions(assets=list(specs.values()))
    graph = defs.resolve_asset_graph()
    assert raw_events in graph.get_all_asset_keys()  # an external node: the graph has no hole
    assert not graph.get(raw_events).is_materializable


def test_functions_in_views_are_ignored(lineage_snapshot: PostgresCatalogSnapshot) -> None:
    view = relation(lineage_snapshot, "reporting", "with_function")
    # sales.order_count() reads sales.orders, but Postgres cannot see inside it, and neither do we.
    assert [(d.schema, d.name) for d in view.deps] == [("staging", "raw_events")]
    assert {c.column: [(i.relation.name, i.column) for i in c.inputs] for c in view.column_lineage} == {
        "payload": [("raw_events", "payload")]  # `orders` and `at` come from no column: left out
    }


def test_column_lineage_through_joins_aliases_ctes_aggregates_and_unions(
    lineage_db: PgTarget, lineage_snapshot: PostgresCatalogSnapshot
) -> None:
    specs = specs_by_key(lineage_db, lineage_snapshot, filters={"schemas": {"exclude": ["staging"]}})
    assert column_lineage_of(specs[key(lineage_db, "sales", "order_totals")]) == {
        "customer_id": {("sales", "orders", "customer_id")},
        "total": {("sales", "orders", "amount")},  # aggregate; `n` is count(*): no column, left out
    }
    assert column_lineage_of(specs[key(lineage_db, "reporting", "customer_totals")]) == {
        "id": {("public", "customer", "customer_id")},
        "full_name": {("public", "customer", "first_name"), ("public", "customer", "last_name")},
        "total": {("sales", "order_totals", "total")},
    }
    assert column_lineage_of(specs[key(lineage_db, "reporting", "top_customers")]) == {
        "customer": {("reporting", "customer_totals", "id")},  # through the CTE and two aliases
        "spent": {("reporting", "customer_totals", "total")},
    }
    assert column_lineage_of(specs[key(lineage_db, "reporting", "unioned")]) == {
        "id": {("sales", "orders", "id"), ("staging", "raw_events", "id")},
        "amount": {("sales", "orders", "amount")},
    }


def test_unparseable_view_keeps_exact_deps_and_no_column_lineage(
    lineage_db: PgTarget, lineage_snapshot: PostgresCatalogSnapshot
) -> None:
    view = relation(lineage_snapshot, "reporting", "odd_operator")
    assert "~>=~" in (view.view_definition or "")  # sqlglot has no parser for this operator
    assert [(d.schema, d.name) for d in view.deps] == [("staging", "raw_events")]
    assert view.column_lineage == []
    spec = specs_by_key(lineage_db, lineage_snapshot, filters={"schemas": {"exclude": ["staging"]}})[
        key(lineage_db, "reporting", "odd_operator")
    ]
    assert "dagster/column_lineage" not in spec.metadata


def test_a_dep_on_a_partition_points_at_its_root_unless_partitions_are_exposed(
    lineage_db: PgTarget, lineage_snapshot: PostgresCatalogSnapshot
) -> None:
    view_key = key(lineage_db, "reporting", "on_partition")
    rolled_up = specs_by_key(lineage_db, lineage_snapshot, filters={"schemas": {"exclude": ["staging"]}})
    assert deps_of(rolled_up[view_key]) == {key(lineage_db, "public", "payment")}
    assert column_lineage_of(rolled_up[view_key]) == {"amount": {("public", "payment", "amount")}}
    exposed = specs_by_key(
        lineage_db, lineage_snapshot, filters={"schemas": {"exclude": ["staging"]}}, expose_partitions=True
    )
    assert deps_of(exposed[view_key]) == {key(lineage_db, "public", "payment_p2022_01")}


class _Prefixed(DagsterPostgresTranslator):
    def get_asset_key(self, props: PostgresRelationProps) -> dg.AssetKey:
        return super().get_asset_key(props).with_prefix("warehouse")


def test_deps_follow_keys_a_translator_changes(
    lineage_db: PgTarget, lineage_snapshot: PostgresCatalogSnapshot
) -> None:
    specs = specs_by_key(
        lineage_db, lineage_snapshot, translator=_Prefixed(), filters={"schemas": {"exclude": ["staging"]}}
    )
    customer_totals = specs[dg.AssetKey(["warehouse", CONNECTION, lineage_db.database, "reporting", "customer_totals"])]
    assert deps_of(customer_totals) == {
        dg.AssetKey(["warehouse", CONNECTION, lineage_db.database, "public", "customer"]),
        dg.AssetKey(["warehouse", CONNECTION, lineage_db.database, "sales", "order_totals"]),
    }
    lineage = TableMetadataSet.extract(customer_totals.metadata).column_lineage
    assert lineage is not None
    assert lineage.deps_by_column["total"][0].asset_key.path[0] == "warehouse"
    # A relation outside the selection keeps the default scheme: nothing defines it here anyway.
    with_function = specs[dg.AssetKey(["warehouse", CONNECTION, lineage_db.database, "reporting", "with_function"])]
    assert deps_of(with_function) == {key(lineage_db, "staging", "raw_events")}


def test_statement_count_does_not_grow_with_views(
    fresh_database: Callable[..., PgTarget], pagila_server: EmbeddedPostgres, pagila: PgTarget
) -> None:
    baseline = read(pagila).statement_count
    target = fresh_database()
    pagila_server.execute(
        "".join(f"CREATE VIEW public.v{i} AS SELECT f.film_id, f.title FROM public.film f WHERE f.film_id > {i};" for i in range(60)),
        target.database,
    )
    snapshot = read(target)
    assert snapshot.statement_count == baseline
    assert len(relation(snapshot, "public", "v59").column_lineage) == 2


def test_a_locked_source_keeps_exact_deps_without_waiting(
    fresh_database: Callable[..., PgTarget], pagila_server: EmbeddedPostgres
) -> None:
    target = fresh_database()
    with pagila_server.connect(target.database) as locker, locker.cursor() as cursor:
        cursor.execute("BEGIN; LOCK TABLE public.film IN ACCESS EXCLUSIVE MODE")
        try:
            snapshot = read(target, lock_timeout_seconds=2)
        finally:
            cursor.execute("ROLLBACK")
    film_list = relation(snapshot, "public", "film_list")
    assert film_list.view_definition is None  # deparsing it would wait for the lock
    assert {d.name for d in film_list.deps} == PAGILA_VIEW_DEPS["film_list"]  # pg_depend needs no lock
    assert film_list.column_lineage == []
    assert relation(snapshot, "public", "customer_list").column_lineage  # views not touching film are whole


def test_parsed_views_are_freed_while_the_collector_is_paused() -> None:
    """sqlglot's trees are cyclic: with `read_catalog`'s collector paused, every parsed view
    stayed in memory to the end of the read (~140 MB at 50k tables) until the parsing worker
    collected them (`_gc.collecting_cycles`)."""
    views = 2 * PARSES_PER_COLLECTION
    source = ("public", "orders")
    dependencies = {
        ("public", f"v{n}"): ViewDependencies(relations=[source], columns={("public", "orders", "id")})
        for n in range(views)
    }
    definitions = {view: "SELECT o.id, o.id + 1 AS next FROM public.orders o WHERE o.id > 0" for view in dependencies}

    def live_syntax_nodes() -> int:
        return sum(isinstance(o, exp.Expr) for o in gc.get_objects())

    with paused_gc():
        before = live_syntax_nodes()
        lineage = _column_lineage_of_views(dependencies, definitions)
        left = live_syntax_nodes() - before
    assert lineage[("public", "v0")] == {"id": [("public", "orders", "id")], "next": [("public", "orders", "id")]}
    assert len(lineage) == views
    # ~20 nodes a view: without the collections, all 200 views' trees (~4,000 nodes) stay
    assert left < 50, f"{left} syntax nodes of parsed views still alive"
