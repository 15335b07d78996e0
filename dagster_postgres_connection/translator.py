"""Relation -> AssetSpec: the translator users subclass, and our metadata keys.

Standard Dagster keys carry what Dagster understands (`dagster/column_schema`,
`dagster/table_name`); the rest lives under the `dagster-postgres-connection/` namespace.
`dagster/row_count` is left to observations: it means a counted number of rows, while
`reltuples` is only the planner's estimate.
"""

from collections.abc import Mapping, Sequence
from functools import lru_cache

from dagster import (
    AssetKey,
    AssetSpec,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableConstraints,
    TableSchema,
)
from dagster._core.definitions.metadata import NamespacedMetadataSet
from dagster_shared.record import record

from dagster_postgres_connection.catalog.models import (
    PostgresRelation,
    PostgresRelationRef,
)
from dagster_postgres_connection.object_metadata import (
    column_notes,
    describe_indexes,
    postgres_uri,
    structure_metadata,
    table_constraint_notes,
)


class PostgresMetadataSet(NamespacedMetadataSet):
    """Our own metadata keys, e.g. `dagster-postgres-connection/owner`.

    Read them back with `PostgresMetadataSet.extract(spec.metadata)`.
    """

    relation_kind: str | None = None
    owner: str | None = None
    row_estimate: int | None = None  # pg_class.reltuples: the planner's estimate
    size_bytes: int | None = None  # heap + TOAST + indexes, from the catalog
    primary_key: str | None = None
    view_definition: str | None = None
    indexes: str | None = None  # one line per index: name, method, columns, unique / primary key
    partition_strategy: str | None = None  # range, list or hash (partitioned tables)
    partition_key: str | None = None
    partition_count: int | None = None  # leaf partitions, all levels
    partition_bounds: str | None = None  # one line per partition, summarised beyond 20
    partition_of: str | None = None  # `schema.table` (partitions, when exposed as assets)
    partition_bound: str | None = None
    inherits_from: str | None = None  # legacy INHERITS parents, `schema.table, ...`
    foreign_server: str | None = None
    foreign_data_wrapper: str | None = None
    foreign_server_options: str | None = None  # `host=..., dbname=...`; user mappings are never read
    foreign_table_options: str | None = None

    @classmethod
    def namespace(cls) -> str:
        """The key prefix: `dagster-postgres-connection/<field>`."""
        return "dagster-postgres-connection"


_POSTGRES_METADATA_KEYS = {field: f"{PostgresMetadataSet.namespace()}/{field}" for field in PostgresMetadataSet.model_fields}


def postgres_metadata(**fields: object) -> dict[str, object]:
    """`dict(PostgresMetadataSet(**fields))` without its None values, minus its cost.

    The metadata set validates every instance with pydantic: ~100 µs an asset, a second per
    10k assets at code location load. Same keys; an unknown field is a `KeyError`.
    """
    return {_POSTGRES_METADATA_KEYS[name]: value for name, value in fields.items() if value is not None}


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
        legacy inheritance parents, and a partition's parent when partitions are assets."""
        relation = self.relation
        refs = [*relation.inherits_from, *relation.deps]
        if self.expose_partitions and relation.partition_of is not None:
            refs.insert(0, relation.partition_of)
        upstream: dict[tuple[str, str], PostgresRelationRef] = {}
        for ref in map(self.resolve, refs):
            if (ref.schema, ref.name) != (relation.schema, relation.name):
                upstream.setdefault((ref.schema, ref.name), ref)
        return list(upstream.values())


def build_column_schema(relation: PostgresRelation) -> TableSchema:
    """Every column with its Postgres type, nullability, keys and comment."""
    primary_key = set(relation.primary_key)
    single_column_unique = {uc.columns[0] for uc in relation.unique_constraints if len(uc.columns) == 1}
    if len(primary_key) == 1:
        single_column_unique |= primary_key
    references: dict[str, list[str]] = {}
    for fk in relation.foreign_keys:
        for column, referred in zip(fk.columns, fk.referred_columns, strict=True):
            references.setdefault(column, []).append(
                f"foreign key -> {fk.referred_schema}.{fk.referred_table}({referred})"
            )
    columns = []
    for column in relation.columns:
        other = []
        if column.name in primary_key:
            other.append("primary key")
        other.extend(references.get(column.name, ()))
        if column.default is not None:
            other.append(f"default {column.default}")
        other.extend(column_notes(column))
        unique = column.name in single_column_unique
        columns.append(_table_column(column.name, column.type, column.comment, column.nullable, unique, tuple(other)))
    return TableSchema(columns=columns, constraints=TableConstraints(other=_table_constraints(relation)))


@lru_cache(maxsize=65536)
def _table_column(
    name: str, type: str, comment: str | None, nullable: bool, unique: bool, other: tuple[str, ...]
) -> TableColumn:
    """Shared instances: columns such as `id bigint NOT NULL` recur across a catalog's tables
    (154,562 columns, 8,703 distinct at 10k generated tables), and each `TableColumn` validates
    its arguments when built."""
    return TableColumn(
        name=name, type=type, description=comment, constraints=_column_constraints(nullable, unique, other)
    )


@lru_cache(maxsize=4096)
def _column_constraints(nullable: bool, unique: bool, other: tuple[str, ...]) -> TableColumnConstraints:
    """Shared instances: most columns of a catalog have one of a few constraint sets."""
    return TableColumnConstraints(nullable=nullable, unique=unique, other=list(other))


def _quote_list(columns: Sequence[str]) -> str:
    return ", ".join(columns)


def _table_constraints(relation: PostgresRelation) -> list[str]:
    constraints = []
    if relation.primary_key:
        constraints.append(f"PRIMARY KEY ({_quote_list(relation.primary_key)})")
    constraints.extend(f"UNIQUE ({_quote_list(uc.columns)})" for uc in relation.unique_constraints)
    constraints.extend(
        f"FOREIGN KEY ({_quote_list(fk.columns)}) REFERENCES "
        f"{fk.referred_schema}.{fk.referred_table} ({_quote_list(fk.referred_columns)})"
        for fk in relation.foreign_keys
    )
    constraints.extend(table_constraint_notes(relation))
    return constraints


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
        """`dagster/column_lineage` of a view: each output column from its input columns."""
        deps_by_column = {
            lineage.column: list(
                dict.fromkeys(  # two partitions of one root are one input once rolled up
                    TableColumnDep(
                        asset_key=self.get_upstream_asset_key(props, props.resolve(source.relation)),
                        column_name=source.column,
                    )
                    for source in lineage.inputs
                )
            )
            for lineage in props.relation.column_lineage
        }
        return TableColumnLineage(deps_by_column=deps_by_column) if deps_by_column else None

    def get_asset_spec(self, props: PostgresRelationProps) -> AssetSpec:
        """The relation's spec: key, group, kinds, description, deps, owners and metadata."""
        relation = props.relation
        # TableMetadataSet's keys and ours, as plain dicts: the metadata set classes validate
        # each instance, a second per 10k assets at load (see `postgres_metadata`).
        metadata = {
            "dagster/column_schema": build_column_schema(relation),
            "dagster/column_lineage": self.get_column_lineage(props),
            "dagster/table_name": relation.qualified_name,
            "dagster/uri": props.uri,
            **postgres_metadata(
                relation_kind=relation.kind.value,
                owner=relation.owner,
                row_estimate=relation.row_estimate,
                size_bytes=relation.size_bytes,
                primary_key=", ".join(relation.primary_key) or None,
                view_definition=relation.view_definition,
                indexes=describe_indexes(relation.indexes),
                **structure_metadata(relation),
            ),
        }
        return AssetSpec(
            key=self.get_asset_key(props),
            description=relation.comment,
            group_name=props.connection_name,
            kinds=set(relation.kind.dagster_kinds),
            deps=[self.get_upstream_asset_key(props, ref) for ref in props.upstream],
            owners=props.owners,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )
