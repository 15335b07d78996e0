"""The component on real Pagila: keys, group, kinds, descriptions and column metadata."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._utils.test.definitions import scoped_definitions_load_context

from dagster_postgres_connection import PostgresConnectionComponent, PostgresMetadataSet
from dagster_postgres_connection_tests.utils import (
    PgTarget,
    connection_attributes as shared_connection_attributes,
    scaffolded_connection,
)

PASSWORD_ENV = "DPC_TEST_READER_PASSWORD"

PAGILA_TABLES = {
    "actor", "address", "category", "city", "country", "customer", "film", "film_actor",
    "film_category", "inventory", "language", "rental", "staff", "store",
}
PAGILA_VIEWS = {
    "actor_info", "customer_list", "film_list", "nicer_but_slower_film_list",
    "sales_by_film_category", "sales_by_store", "staff_list",
}


def connection_attributes(target: PgTarget, **extra: Any) -> dict[str, Any]:
    return shared_connection_attributes(target, password_env=PASSWORD_ENV, **extra)


@contextmanager
def load_defs(attributes: dict[str, Any]) -> Iterator[tuple[PostgresConnectionComponent, dg.Definitions]]:
    with scaffolded_connection(attributes) as (sandbox, path), scoped_definitions_load_context():
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, PostgresConnectionComponent)
            yield component, defs


@pytest.fixture(name="reader_password_env", autouse=True)
def reader_password_env_fixture(monkeypatch: pytest.MonkeyPatch, pagila: PgTarget) -> None:
    monkeypatch.setenv(PASSWORD_ENV, pagila.password)


def key(*parts: str) -> dg.AssetKey:
    return dg.AssetKey(["pagila_prod", "pagila", "public", *parts])


def spec_of(defs: dg.Definitions, asset_key: dg.AssetKey) -> dg.AssetSpec:
    return defs.resolve_assets_def(asset_key).get_asset_spec(asset_key)


@pytest.fixture(name="pagila_defs", scope="module")
def pagila_defs_fixture(pagila: PgTarget) -> Iterator[dg.Definitions]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(PASSWORD_ENV, pagila.password)
        with load_defs(connection_attributes(pagila)) as (_, defs):
            yield defs


def test_every_table_view_and_matview_is_an_asset(pagila_defs: dg.Definitions) -> None:
    keys = pagila_defs.resolve_asset_graph().get_all_asset_keys()
    names = {k.path[-1] for k in keys}
    assert {tuple(k.path[:3]) for k in keys} == {("pagila_prod", "pagila", "public")}
    assert PAGILA_TABLES | PAGILA_VIEWS | {"rental_by_category", "payment"} <= names
    # Partitions of `payment` are the only other relations.
    assert all(n.startswith("payment_p") for n in names - PAGILA_TABLES - PAGILA_VIEWS - {"rental_by_category", "payment"})


def test_group_kinds_and_description(pagila_defs: dg.Definitions) -> None:
    film = spec_of(pagila_defs, key("film"))
    assert film.group_name == "pagila_prod"
    assert film.kinds == {"postgres", "table"}
    assert spec_of(pagila_defs, key("actor_info")).kinds == {"postgres", "view"}
    assert spec_of(pagila_defs, key("rental_by_category")).kinds == {"postgres", "view", "materialized_view"}
    assert spec_of(pagila_defs, key("payment")).kinds == {"postgres", "table", "partitioned_table"}


def test_column_schema_carries_postgres_types_nullability_and_keys(pagila_defs: dg.Definitions) -> None:
    film = spec_of(pagila_defs, key("film"))
    table = TableMetadataSet.extract(film.metadata)
    assert table.table_name == "pagila.public.film"
    assert table.column_schema is not None
    columns = {c.name: c for c in table.column_schema.columns}
    assert list(columns)[:3] == ["film_id", "title", "description"]
    assert columns["film_id"].type == "integer"
    assert columns["film_id"].constraints.nullable is False
    assert columns["film_id"].constraints.unique is True
    assert "primary key" in columns["film_id"].constraints.other
    assert columns["rental_rate"].type == "numeric(4,2)"
    assert columns["rating"].type == "mpaa_rating"
    assert columns["special_features"].type == "text[]"
    assert columns["fulltext"].type == "tsvector"
    assert columns["description"].constraints.nullable is True
    assert "foreign key -> public.language(language_id)" in columns["language_id"].constraints.other
    assert "PRIMARY KEY (film_id)" in table.column_schema.constraints.other

    film_actor = TableMetadataSet.extract(spec_of(pagila_defs, key("film_actor")).metadata)
    assert film_actor.column_schema is not None
    assert "PRIMARY KEY (actor_id, film_id)" in film_actor.column_schema.constraints.other
    # A column of a composite key is not unique on its own.
    assert all(c.constraints.unique is False for c in film_actor.column_schema.columns)


def test_owner_row_estimate_and_size(pagila_defs: dg.Definitions) -> None:
    ours = PostgresMetadataSet.extract(spec_of(pagila_defs, key("film")).metadata)
    assert ours.owner == "postgres"
    assert ours.relation_kind == "table"
    assert ours.row_estimate == 1000  # Pagila is ANALYZEd by the fixture
    assert ours.size_bytes is not None and ours.size_bytes > 100_000
    assert "dagster/row_count" not in spec_of(pagila_defs, key("film")).metadata  # an estimate is not a count


def test_comments_become_descriptions(fresh_database: Any, pagila_server: Any) -> None:
    target: PgTarget = fresh_database()
    pagila_server.execute(
        "COMMENT ON TABLE public.film IS 'Every film we rent out.';"
        "COMMENT ON COLUMN public.film.title IS 'Title as printed on the box.'",
        target.database,
    )
    with load_defs(connection_attributes(target, name="c")) as (_, defs):
        film = defs.resolve_assets_def(dg.AssetKey(["c", target.database, "public", "film"]))
        spec = film.get_asset_spec(dg.AssetKey(["c", target.database, "public", "film"]))
        assert spec.description == "Every film we rent out."
        schema = TableMetadataSet.extract(spec.metadata).column_schema
        assert schema is not None
        assert {c.name: c.description for c in schema.columns}["title"] == "Title as printed on the box."


@pytest.mark.parametrize(
    "filters, expected_present, expected_absent",
    [
        ({"tables": {"exclude": ["payment_p.*"]}}, {"payment", "film"}, {"payment_p2022_01"}),
        ({"views": {"exclude": [".*"]}}, {"film"}, {"actor_info", "rental_by_category"}),
        ({"tables": {"include": ["FILM.*"]}, "views": {"include": ["none"]}}, {"film", "film_actor", "film_category"}, {"actor", "film_list"}),
        ({"tables": {"include": ["public\\.actor"]}}, {"actor", "film_list"}, {"film"}),
        ({"schemas": {"include": ["other"]}}, set(), {"film", "actor_info"}),
    ],
    ids=["exclude-partitions", "exclude-views", "include-case-insensitive", "qualified", "schema-not-selected"],
)
def test_filters_decide_what_is_loaded(
    pagila: PgTarget, filters: dict, expected_present: set[str], expected_absent: set[str]
) -> None:
    with load_defs(connection_attributes(pagila, filters=filters)) as (_, defs):
        # The specs defined here: an excluded relation a view reads still appears in the asset
        # graph, as an undefined dep (catalog/test_lineage.py), but it is not one of them.
        names = {spec.key.path[-1] for spec in defs.assets or [] if isinstance(spec, dg.AssetSpec)}
        assert expected_present <= names
        assert not (expected_absent & names)


def test_unix_socket_connection(pagila: PgTarget) -> None:
    with load_defs({**connection_attributes(pagila), "host": str(pagila.socket_dir)}) as (_, defs):
        assert key("film") in defs.resolve_asset_graph().get_all_asset_keys()


def test_refresh_state_writes_a_snapshot_without_the_password(pagila: PgTarget) -> None:
    """The Dagster state-backed rhythm: refresh writes the snapshot that loading reads."""
    with scaffolded_connection(connection_attributes(pagila)) as (sandbox, path):
        with scoped_definitions_load_context():
            with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
                assert isinstance(component, PostgresConnectionComponent)
                first_keys = defs.resolve_asset_graph().get_all_asset_keys()
                asyncio.run(component.refresh_state(sandbox.project_root))
        state_files = list(sandbox.project_root.rglob(".local_defs_state/*/state"))
        assert len(state_files) == 1
        assert state_files[0].parent.name == "PostgresConnectionComponent__pagila_prod__"
        assert pagila.password not in state_files[0].read_text()
        with scoped_definitions_load_context():
            with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
                assert defs.resolve_asset_graph().get_all_asset_keys() == first_keys
