"""Linking connection assets to the assets that code already produces, by `dagster/table_name`.

Dagster+ links connection-discovered tables to the code assets that build them by their
`dagster/table_name`. `link_to_existing_assets` does the same inside one project: when a dbt
model, a Sling stream or an `@asset` in the same Definitions declares the table name of a
relation we discovered, we emit no second asset for that relation, and the deps and column
lineage of our views point at the producing asset instead. In the other direction, a dep that
names one of our relations by its `dagster/table_name` but whose key nothing defines (a dbt
source: dagster-dbt declares each as an `AssetDep` carrying the source's table name) points at
our asset instead of a stub.
"""

from collections.abc import Iterable, Mapping

from dagster import (
    AssetDep,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Definitions,
    TableColumnDep,
    TableColumnLineage,
)
from dagster._core.definitions.metadata import TableMetadataSet
from dagster_shared.record import replace

from dagster_postgres_connection.load_warnings import warn_at_load
from dagster_postgres_connection.metadata import PostgresMetadataSet

_OUR_MARKER = f"{PostgresMetadataSet.namespace()}/relation_kind"
_COLUMN_LINEAGE = "dagster/column_lineage"


def is_connection_spec(spec: AssetSpec) -> bool:
    """True for the specs a Postgres connection emits (they carry our `relation_kind`)."""
    return _OUR_MARKER in spec.metadata


def remap_upstream(spec: AssetSpec, key_map: Mapping[AssetKey, AssetKey]) -> AssetSpec:
    """`spec` with its deps and `dagster/column_lineage` pointing at `key_map`'s targets."""
    if not any(dep.asset_key in key_map for dep in spec.deps):
        return spec
    deps: dict[AssetKey, AssetDep] = {}
    for dep in spec.deps:
        key = key_map.get(dep.asset_key, dep.asset_key)
        deps.setdefault(key, AssetDep(key, partition_mapping=dep.partition_mapping))
    metadata = dict(spec.metadata)
    lineage = TableMetadataSet.extract(metadata).column_lineage
    if lineage is not None:
        metadata[_COLUMN_LINEAGE] = TableColumnLineage(
            deps_by_column={
                column: [
                    TableColumnDep(asset_key=key_map.get(d.asset_key, d.asset_key), column_name=d.column_name)
                    for d in column_deps
                ]
                for column, column_deps in lineage.deps_by_column.items()
            }
        )
    return spec.replace_attributes(deps=list(deps.values()), metadata=metadata)


def _table_names(spec: AssetSpec) -> str | None:
    return TableMetadataSet.extract_normalized_table_name(spec.metadata)


def _specs_of(asset: object) -> Iterable[AssetSpec]:
    if isinstance(asset, AssetSpec):
        return [asset]
    if isinstance(asset, AssetsDefinition):
        return list(asset.specs)
    return []


def link_to_existing_assets(defs: Definitions) -> Definitions:
    """One graph for a project where code builds or reads relations the connection catalogs.

    - A connection asset whose relation another asset of `defs` produces is dropped, and the
      deps and column lineage of the connection's views point at the producing asset instead.
      A producing asset is one whose `dagster/table_name` equals the relation's
      `database.schema.table` or `schema.table`, case-insensitively (dagster-dbt writes
      `database.schema.alias` for models, seeds and snapshots).
    - A dep of another asset on a key nothing defines, whose `AssetDep` metadata names one of
      the connection's relations in `dagster/table_name` (dagster-dbt does that for sources),
      points at that relation's asset (or at its producer) instead of a stub.

    A `schema.table` that matches relations of several databases is ambiguous and left unlinked
    (with a warning). The result does not depend on the order of the assets in `defs`, so the
    connection's component may come before or after the one producing the tables.

    Example:
        .. code-block:: python

            # src/<project>/definitions.py
            from pathlib import Path

            import dagster as dg
            from dagster_postgres_connection import link_to_existing_assets


            @dg.definitions
            def defs() -> dg.Definitions:
                return link_to_existing_assets(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
    """
    assets = list(defs.assets or [])
    ours: list[AssetSpec] = []
    theirs: list[AssetSpec] = []
    for asset in assets:
        for spec in _specs_of(asset):
            (ours if is_connection_spec(spec) else theirs).append(spec)
    if not ours:
        return defs

    relations = _RelationsByTableName(ours)
    key_map: dict[AssetKey, AssetKey] = {}
    for spec in theirs:
        table_name = _table_names(spec)
        relation = relations.find(table_name, producer=spec.key) if table_name is not None else None
        if relation is not None and relation != spec.key:
            key_map[relation] = spec.key

    # Deps on keys nothing defines, naming one of our relations: point them at its asset.
    defined = {spec.key for spec in ours} | {spec.key for spec in theirs}
    dep_map: dict[AssetKey, AssetKey] = {}
    for spec in theirs:
        for dep in spec.deps:
            if dep.asset_key in defined or (table_name := _table_names_of_dep(dep)) is None:
                continue
            relation = relations.find(table_name, producer=dep.asset_key)
            if relation is not None:
                dep_map[dep.asset_key] = key_map.get(relation, relation)
    for message in relations.ambiguities:
        warn_at_load(message)
    if not key_map and not dep_map:
        return defs

    linked: list[object] = []
    for asset in assets:
        if isinstance(asset, AssetSpec) and is_connection_spec(asset):
            if asset.key not in key_map:
                linked.append(remap_upstream(asset, key_map))
        elif dep_map and isinstance(asset, AssetSpec):
            linked.append(remap_upstream(asset, dep_map))
        elif dep_map and isinstance(asset, AssetsDefinition) and _reads_any(asset, dep_map):
            # Only non-argument deps change (dagster-dbt's are all `Nothing`): public API.
            linked.append(asset.map_asset_specs(lambda spec: remap_upstream(spec, dep_map)))
        else:
            linked.append(asset)
    return replace(defs, assets=linked, asset_checks=_without_checks_on(defs.asset_checks or [], key_map.keys()))


class _RelationsByTableName:
    """The connection's relations by `database.schema.table` and `schema.table`, lower case."""

    def __init__(self, ours: Iterable[AssetSpec]) -> None:
        self._by_name: dict[str, AssetKey] = {}
        self._by_short_name: dict[str, list[AssetKey]] = {}
        self.ambiguities: dict[str, None] = {}  # messages, each said once
        for spec in ours:
            table_name = _table_names(spec) or ""
            self._by_name[table_name] = spec.key
            self._by_short_name.setdefault(table_name.split(".", 1)[-1], []).append(spec.key)

    def find(self, table_name: str, *, producer: AssetKey) -> AssetKey | None:
        """Our asset for `table_name` (normalized), or None (noting why when ambiguous)."""
        if table_name in self._by_name:
            return self._by_name[table_name]
        candidates = self._by_short_name.get(table_name, [])
        if len(candidates) > 1:
            self.ambiguities[
                f"Not linking asset `{producer.to_user_string()}` to a relation of the connection: "
                f"its `dagster/table_name` `{table_name}` matches relations of several databases "
                f"({', '.join(f'`{key.to_user_string()}`' for key in candidates)}). Use "
                f"`database.schema.table` there."
            ] = None
            return None
        return candidates[0] if candidates else None


def _table_names_of_dep(dep: AssetDep) -> str | None:
    return TableMetadataSet.extract_normalized_table_name(dep.metadata) if dep.metadata else None


def _reads_any(asset: AssetsDefinition, keys: Mapping[AssetKey, AssetKey]) -> bool:
    return any(dep.asset_key in keys for spec in asset.specs for dep in spec.deps)


def _without_checks_on(checks_defs: Iterable[AssetsDefinition], dropped: Iterable[AssetKey]) -> list[AssetsDefinition]:
    """Checks of the connection (e.g. `schema_unchanged`) on dropped assets are subset away:
    the producing asset owns that table now, and a check on a missing key would bring it back."""
    dropped = set(dropped)
    kept_defs = []
    for checks_def in checks_defs:
        kept = {key for key in checks_def.check_keys if key.asset_key not in dropped}
        if kept == checks_def.check_keys:
            kept_defs.append(checks_def)
        elif kept:
            kept_defs.append(checks_def.subset_for(set(), kept))
    return kept_defs
