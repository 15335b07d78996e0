"""Linking connection assets to the assets that code already produces, by `dagster/table_name`.

Dagster+ links connection-discovered tables to the code assets that build them by their
`dagster/table_name`. `link_to_existing_assets` does the same inside one project: when a dbt
model, a Sling stream or an `@asset` in the same Definitions declares the table name of a
relation we discovered, we emit no second asset for that relation, and the deps and column
lineage of our views point at the producing asset instead.
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
    get_dagster_logger,
)
from dagster._core.definitions.metadata import TableMetadataSet
from dagster_shared.record import replace

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
    """Drops connection assets that another asset of `defs` produces, and re-points deps at it.

    A producing asset is one whose `dagster/table_name` equals the relation's
    `database.schema.table` or `schema.table`, case-insensitively. A `schema.table` that
    matches relations of several databases is ambiguous and left unlinked (with a warning).

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
    producers: dict[str, AssetKey] = {}
    ours: list[AssetSpec] = []
    for asset in assets:
        for spec in _specs_of(asset):
            if is_connection_spec(spec):
                ours.append(spec)
            elif (table_name := _table_names(spec)) is not None:
                producers[table_name] = spec.key
    if not ours or not producers:
        return defs

    short_names: dict[str, list[AssetSpec]] = {}
    for spec in ours:
        table_name = _table_names(spec) or ""
        short_names.setdefault(table_name.split(".", 1)[-1], []).append(spec)
    key_map: dict[AssetKey, AssetKey] = {}
    for spec in ours:
        table_name = _table_names(spec) or ""
        short = table_name.split(".", 1)[-1]
        producer = producers.get(table_name)
        if producer is None and short in producers:
            if len(short_names[short]) == 1:
                producer = producers[short]
            else:
                get_dagster_logger().warning(
                    f"Not linking `{table_name}` to asset `{producers[short].to_user_string()}`: its "
                    f"`dagster/table_name` `{short}` matches relations of several databases. Use "
                    f"`database.schema.table` there."
                )
        if producer is not None and producer != spec.key:
            key_map[spec.key] = producer
    if not key_map:
        return defs

    linked = [
        remap_upstream(asset, key_map) if isinstance(asset, AssetSpec) and is_connection_spec(asset) else asset
        for asset in assets
        if not (isinstance(asset, AssetSpec) and asset.key in key_map)
    ]
    return replace(defs, assets=linked, asset_checks=_without_checks_on(defs.asset_checks or [], key_map.keys()))


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
