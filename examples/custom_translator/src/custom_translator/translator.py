"""Customising the connection in Python: a translator subclass and a component using it."""

import dagster as dg

from dagster_postgres_connection import (
    DagsterPostgresTranslator,
    PostgresConnectionComponent,
    PostgresRelationProps,
)


class PagilaTranslator(DagsterPostgresTranslator):
    """Keys `warehouse/<schema>/<relation>`; views in their own group; a `layer` tag.

    Overriding `get_asset_key` (rather than replacing the key afterwards) keeps one scheme for
    assets and their deps; deps are re-pointed at changed keys either way.
    Works with the Python factory too: `build_postgres_connection_defs(..., translator=PagilaTranslator())`.
    """

    def get_asset_key(self, props: PostgresRelationProps) -> dg.AssetKey:
        return dg.AssetKey(["warehouse", props.schema, props.name])

    def get_asset_spec(self, props: PostgresRelationProps) -> dg.AssetSpec:
        spec = super().get_asset_spec(props)
        layer = "serving" if props.relation.kind.is_view else "storage"
        return spec.replace_attributes(group_name=f"pagila_{layer}").merge_attributes(tags={"layer": layer})


class PagilaConnection(PostgresConnectionComponent):
    """The connection component with `PagilaTranslator`; `translation:` in defs.yaml applies on top."""

    def get_asset_spec(self, props: PostgresRelationProps) -> dg.AssetSpec:
        return PagilaTranslator().get_asset_spec(props)
