"""The translator: hand-built props, a Python subclass, and the YAML `translation:` block."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster.components.testing import create_defs_folder_sandbox

from dagster_postgres_connection import (
    DagsterPostgresTranslator,
    PostgresConnectionComponent,
    PostgresMetadataSet,
    PostgresRelationProps,
)
from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresColumnLineage,
    PostgresColumnRef,
    PostgresRelation,
    PostgresRelationKind,
    PostgresRelationRef,
)
from dagster_postgres_connection_tests.utils import PgTarget

PASSWORD_ENV = "DPC_TRANSLATOR_TEST_PASSWORD"


def view_props(**props: Any) -> PostgresRelationProps:
    """`reporting.totals`, a view over `sales.orders` and the partition `sales.events_2024`."""
    orders = PostgresRelationRef(schema="sales", name="orders")
    partition = PostgresRelationRef(schema="sales", name="events_2024", root_schema="sales", root_name="events")
    relation = PostgresRelation(
        database="shop",
        schema="reporting",
        name="totals",
        kind=PostgresRelationKind.VIEW,
        columns=[PostgresColumn(name="total", type="numeric(10,2)", nullable=True)],
        owner="analytics",
        deps=[orders, partition],
        column_lineage=[
            PostgresColumnLineage(
                column="total",
                inputs=[PostgresColumnRef(relation=orders, column="amount"), PostgresColumnRef(relation=partition, column="amount")],
            )
        ],
    )
    return PostgresRelationProps(connection_name="prod", host="db.internal", port=5433, relation=relation, **props)


def test_default_spec_of_a_view() -> None:
    spec = DagsterPostgresTranslator().get_asset_spec(view_props())
    assert spec.key == dg.AssetKey(["prod", "shop", "reporting", "totals"])
    assert {d.asset_key for d in spec.deps} == {
        dg.AssetKey(["prod", "shop", "sales", "orders"]),
        dg.AssetKey(["prod", "shop", "sales", "events"]),  # the partition rolls up into its root
    }
    lineage = TableMetadataSet.extract(spec.metadata).column_lineage
    assert lineage is not None
    assert {(d.asset_key.path[-1], d.column_name) for d in lineage.deps_by_column["total"]} == {
        ("orders", "amount"),
        ("events", "amount"),
    }
    assert spec.metadata["dagster/uri"] == "postgresql://db.internal:5433/shop"
    assert spec.kinds == {"postgres", "view"}
    assert spec.tags["dagster/kind/view"] == ""
    assert spec.owners == []


def test_exposed_partitions_and_owner_mapping_come_from_props() -> None:
    spec = DagsterPostgresTranslator().get_asset_spec(
        view_props(expose_partitions=True, owners_by_role={"analytics": "team:analytics"})
    )
    assert dg.AssetKey(["prod", "shop", "sales", "events_2024"]) in {d.asset_key for d in spec.deps}
    assert spec.owners == ["team:analytics"]


class WarehouseTranslator(DagsterPostgresTranslator):
    """What users write: another key scheme, group per schema, and a tag."""

    def get_asset_spec(self, props: PostgresRelationProps) -> dg.AssetSpec:
        spec = super().get_asset_spec(props)
        return spec.replace_attributes(
            key=dg.AssetKey(["warehouse", props.schema, props.name]), group_name=props.schema
        ).merge_attributes(tags={"source": "postgres"})


def test_subclass_changes_key_group_and_tags() -> None:
    spec = WarehouseTranslator().get_asset_spec(view_props())
    assert spec.key == dg.AssetKey(["warehouse", "reporting", "totals"])
    assert spec.group_name == "reporting"
    assert spec.tags["source"] == "postgres"
    assert PostgresMetadataSet.extract(spec.metadata).owner == "analytics"


@contextmanager
def load_component(
    target: PgTarget, component_cls: type = PostgresConnectionComponent, **attributes: Any
) -> Iterator[dg.Definitions]:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=component_cls,
            defs_yaml_contents={
                "type": f"{component_cls.__module__}.{component_cls.__qualname__}",
                "attributes": {
                    "name": "pagila_prod",
                    "host": target.host,
                    "port": target.port,
                    "username": target.user,
                    "password_env_var": PASSWORD_ENV,
                    "databases": [target.database],
                    **attributes,
                },
            },
        )
        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            yield defs


def spec_of(defs: dg.Definitions, key: dg.AssetKey) -> dg.AssetSpec:
    return defs.resolve_assets_def(key).get_asset_spec(key)


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch, pagila: PgTarget) -> None:
    monkeypatch.setenv(PASSWORD_ENV, pagila.password)


def test_yaml_translation_changes_keys_groups_owners_tags_and_deps_follow(pagila: PgTarget) -> None:
    translation = {
        "key": "warehouse/{{ props.schema }}/{{ props.name }}",
        "group_name": "{{ props.schema }}_{{ 'views' if props.relation.kind.is_view else 'tables' }}",
        "owners": ["team:{{ props.relation.owner }}"],
        "tags": {"layer": "{{ props.kind }}"},
        "description": "{{ props.table_name }} on {{ props.uri }}",
    }
    with load_component(pagila, translation=translation) as defs:
        film_list = spec_of(defs, dg.AssetKey(["warehouse", "public", "film_list"]))
        assert film_list.group_name == "public_views"
        assert film_list.owners == ["team:postgres"]
        assert film_list.tags["layer"] == "view"
        assert film_list.description == f"pagila.public.film_list on postgresql://{pagila.host}:{pagila.port}/pagila"
        # Deps were built in the default scheme and follow the translated keys.
        assert {d.asset_key for d in film_list.deps} == {
            dg.AssetKey(["warehouse", "public", t]) for t in ("actor", "category", "film", "film_actor", "film_category")
        }
        assert spec_of(defs, dg.AssetKey(["warehouse", "public", "payment"])).group_name == "public_tables"


def test_yaml_owners_by_role_and_expose_partitions(pagila: PgTarget) -> None:
    with load_component(pagila, owners_by_role={"postgres": "team:dba"}, expose_partitions=True) as defs:
        partition = spec_of(defs, dg.AssetKey(["pagila_prod", "pagila", "public", "payment_p2022_01"]))
        assert partition.owners == ["team:dba"]
        assert {d.asset_key for d in partition.deps} == {dg.AssetKey(["pagila_prod", "pagila", "public", "payment"])}


def test_an_owner_that_is_not_a_dagster_owner_is_named(pagila: PgTarget) -> None:
    with pytest.raises(Exception) as raised:
        with load_component(pagila, owners_by_role={"postgres": "dba"}):
            pass
    messages, error = [], raised.value
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    assert "`owners_by_role.postgres` is 'dba': a Dagster owner is an email address or `team:<name>`" in "\n".join(messages)


class TeamConnection(PostgresConnectionComponent):
    """A component subclass overriding `get_asset_spec`, combined with a YAML translation."""

    def get_asset_spec(self, props: PostgresRelationProps) -> dg.AssetSpec:
        return super().get_asset_spec(props).merge_attributes(tags={"team": "rentals"})


def test_component_subclass_and_yaml_translation_combine(pagila: PgTarget) -> None:
    with load_component(pagila, component_cls=TeamConnection, translation={"tags": {"tier": "gold"}}) as defs:
        film = spec_of(defs, dg.AssetKey(["pagila_prod", "pagila", "public", "film"]))
        assert (film.tags["team"], film.tags["tier"]) == ("rentals", "gold")
