"""Relation -> AssetSpec: the props a translator sees, and the translator users subclass.

The spec's metadata comes from `metadata.py`; keys, deps, kinds, owners and group are here.
"""

from collections.abc import Mapping, Sequence

from dagster import (
    AssetKey,
    AssetSpec,
    TableColumnDep,
    TableColumnLineage,
)
from dagster_shared.record import record

from dagster_postgres_connection.catalog._records import compile_record_constructors
from dagster_postgres_connection.catalog.models import (
    PostgresRelation,
    PostgresRelationRef,
)
from dagster_postgres_connection.metadata import postgres_uri, relation_metadata


@record
class PostgresRelationProps:
    """Everything a translator needs about one relation; `props` in YAML `translation` templates."""

    connection_name: str
    host: str
    port: int
    relation: PostgresRelation
    expose_partitions: bool = False
    owners_by_role: Mapping[str, str] = {}

    @property
    def database(self) -> str:
        """The relation's database, e.g. `pagila`."""
        return self.relation.database

    @property
    def schema(self) -> str:
        """The relation's schema, e.g. `public`."""
        return self.relation.schema

    @property
    def name(self) -> str:
        """The relation's name, e.g. `film`."""
        return self.relation.name

    @property
    def kind(self) -> str:
        """`table`, `partitioned_table`, `view`, `materialized_view` or `foreign_table`."""
        return self.relation.kind.value

    @property
    def table_name(self) -> str:
        """`database.schema.name`, the value of `dagster/table_name`."""
        return self.relation.qualified_name

    @property
    def uri(self) -> str:
        """`postgresql://host:port/database`: where the relation lives, without credentials."""
        return postgres_uri(self.host, self.port, self.database)

    @property
    def owners(self) -> Sequence[str]:
        """The Dagster owners `owners_by_role` maps the relation's owning role to, if any."""
        owner = self.owners_by_role.get(self.relation.owner or "")
        return [owner] if owner else []

    def resolve(self, ref: PostgresRelationRef) -> PostgresRelationRef:
        """The relation standing for `ref` here: its partitioned root, unless partitions are assets."""
        return ref if self.expose_partitions else ref.rolled_up()

    @property
    def upstream(self) -> Sequence[PostgresRelationRef]:
        """What this relation's asset depends on: relations a view reads (exact, from pg_depend),
        legacy inheritance parents, a partition's parent when partitions are assets, and what
        the routines that write it read (parsed from their bodies, `written_by`) and, with
        `query_history`, what executed statements that wrote it read."""
        relation = self.relation
        refs = [
            *relation.inherits_from,
            *relation.deps,
            *(ref for writer in relation.written_by for ref in writer.reads),
            *(ref for query in relation.written_by_queries for ref in query.reads),
        ]
        if self.expose_partitions and relation.partition_of is not None:
            refs.insert(0, relation.partition_of)
        upstream: dict[tuple[str, str], PostgresRelationRef] = {}
        for ref in map(self.resolve, refs):
            if (ref.schema, ref.name) != (relation.schema, relation.name):
                upstream.setdefault((ref.schema, ref.name), ref)
        return list(upstream.values())


class DagsterPostgresTranslator:
    """Turns one Postgres relation into an AssetSpec. Subclass it to change keys, groups, tags...

    Example:
        .. code-block:: python

            class MyTranslator(DagsterPostgresTranslator):
                def get_asset_spec(self, props: PostgresRelationProps) -> dg.AssetSpec:
                    spec = super().get_asset_spec(props)
                    return spec.replace_attributes(key=spec.key.with_prefix("warehouse"))
    """

    def get_asset_key(self, props: PostgresRelationProps) -> AssetKey:
        """`[connection, database, schema, relation]`; override to change every key at once."""
        return AssetKey([props.connection_name, props.database, props.schema, props.name])

    def get_upstream_asset_key(self, props: PostgresRelationProps, ref: PostgresRelationRef) -> AssetKey:
        """Key of a relation `props` depends on, selected or not, in the default key scheme.

        When a translator gives a selected relation another key, `build_asset_specs` points
        these deps at it afterwards; relations outside the selection keep this key, so the
        lineage graph has no holes.
        """
        return AssetKey([props.connection_name, props.database, ref.schema, ref.name])

    def get_column_lineage(self, props: PostgresRelationProps) -> TableColumnLineage | None:
        """`dagster/column_lineage`: of a view, each output column from its input columns; of a
        table routines (or executed statements) write, each column a statement fills from source
        columns (`written_by`, `written_by_queries`)."""
        relation = props.relation
        lineages = [
            *relation.column_lineage,
            *(c for writer in relation.written_by for c in writer.column_lineage),
            *(c for query in relation.written_by_queries for c in query.column_lineage),
        ]
        deps_by_column: dict[str, list[TableColumnDep]] = {}
        for lineage in lineages:
            deps = deps_by_column.setdefault(lineage.column, [])
            for source in lineage.inputs:
                dep = TableColumnDep(
                    asset_key=self.get_upstream_asset_key(props, props.resolve(source.relation)),
                    column_name=source.column,
                )
                if dep not in deps:  # two partitions of one root are one input once rolled up
                    deps.append(dep)
        return TableColumnLineage(deps_by_column=deps_by_column) if deps_by_column else None

    def get_asset_spec(self, props: PostgresRelationProps) -> AssetSpec:
        """The relation's spec: key, group, kinds, description, deps, owners and metadata."""
        relation = props.relation
        metadata = relation_metadata(relation, uri=props.uri, column_lineage=self.get_column_lineage(props))
        return AssetSpec(
            key=self.get_asset_key(props),
            description=relation.comment,
            group_name=props.connection_name,
            kinds=set(relation.kind.dagster_kinds),
            deps=[self.get_upstream_asset_key(props, ref) for ref in props.upstream],
            owners=props.owners,
            metadata=metadata,
        )


compile_record_constructors(globals())  # see catalog/_records.py
