"""Snapshot -> AssetSpecs: the one path from what was read to what Dagster shows."""

from collections.abc import Sequence

from dagster import AssetKey, AssetSpec
from dagster_shared.record import replace

from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot, PostgresRelation
from dagster_postgres_connection.catalog.selection import select_relation
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.errors import PostgresConfigError
from dagster_postgres_connection.linking import remap_upstream
from dagster_postgres_connection.translator import DagsterPostgresTranslator, PostgresRelationProps


def relation_props(
    snapshot: PostgresCatalogSnapshot, settings: PostgresConnectionSettings
) -> list[PostgresRelationProps]:
    """Props of every relation the current configuration selects.

    The selection is applied again here, not only when reading, so narrowing `filters` takes
    effect at the next load without a re-sync. Partitions are rolled up into their root
    unless `expose_partitions` is set.
    """
    databases = set(settings.databases) if settings.databases else None
    return [
        PostgresRelationProps(
            connection_name=settings.name,
            host=settings.host,
            port=settings.port,
            relation=relation if settings.query_history else without_query_history(relation),
            expose_partitions=settings.expose_partitions,
            owners_by_role=settings.owners_by_role,
        )
        for relation in snapshot.relations()
        if (databases is None or relation.database in databases)
        and (settings.expose_partitions or relation.partition_of is None)
        and select_relation(settings.filters, relation.database, relation.schema, relation.name, relation.kind)
    ]


def without_query_history(relation: PostgresRelation) -> PostgresRelation:
    """The relation as shown with `query_history` off: a snapshot taken with it on keeps its
    usage and executed-statement lineage, which then no longer show (like `filters`, at load)."""
    if relation.query_usage is None and not relation.written_by_queries:
        return relation
    return replace(relation, query_usage=None, written_by_queries=())


def build_asset_specs(
    snapshot: PostgresCatalogSnapshot,
    settings: PostgresConnectionSettings,
    translator: DagsterPostgresTranslator,
) -> Sequence[AssetSpec]:
    return [spec for _, spec in build_relation_specs(snapshot, settings, translator)]


def build_relation_specs(
    snapshot: PostgresCatalogSnapshot,
    settings: PostgresConnectionSettings,
    translator: DagsterPostgresTranslator,
) -> list[tuple[PostgresRelationProps, AssetSpec]]:
    """Each selected relation's props with its spec, in `relation_props` order."""
    pairs: list[tuple[PostgresRelationProps, AssetSpec]] = []
    relation_by_key: dict[object, str] = {}
    # Deps are built in the default key scheme; point them at keys a translator changed.
    moved_keys: dict[AssetKey, AssetKey] = {}
    for props in relation_props(snapshot, settings):
        spec = translator.get_asset_spec(props)
        default_key = AssetKey([props.connection_name, props.database, props.schema, props.name])
        if spec.key != default_key:
            moved_keys[default_key] = spec.key
        if spec.key in relation_by_key:
            raise PostgresConfigError(
                f"The translator gives the same asset key {spec.key.to_user_string()!r} to "
                f"`{relation_by_key[spec.key]}` and `{props.table_name}`: keys must be unique. "
                f"Include the database and schema in `key` (the default does)."
            )
        relation_by_key[spec.key] = props.table_name
        pairs.append((props, spec))
    if moved_keys:
        return [(props, remap_upstream(spec, moved_keys)) for props, spec in pairs]
    return pairs
