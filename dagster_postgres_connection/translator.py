"""Relation -> AssetSpec: the translator users subclass, and our metadata keys.

Standard Dagster keys carry what Dagster understands (`dagster/column_schema`,
`dagster/table_name`); the rest lives under the `dagster-postgres-connection/` namespace.
`dagster/row_count` is left to observations: it means a counted number of rows, while
`reltuples` is only the planner's estimate.
"""

from collections.abc import Sequence

from dagster import AssetKey, AssetSpec, TableColumn, TableColumnConstraints, TableSchema
from dagster._core.definitions.metadata import NamespacedMetadataSet, TableMetadataSet
from dagster._core.definitions.metadata.table import TableConstraints
from dagster_shared.record import record

from dagster_postgres_connection.catalog.models import PostgresRelation, PostgresRelationKind

KINDS_BY_RELATION_KIND: dict[PostgresRelationKind, frozenset[str]] = {
    PostgresRelationKind.TABLE: frozenset({"postgres", "table"}),
    PostgresRelationKind.PARTITIONED_TABLE: frozenset({"postgres", "table", "partitioned_table"}),
    PostgresRelationKind.FOREIGN_TABLE: frozenset({"postgres", "table", "foreign_table"}),
    PostgresRelationKind.VIEW: frozenset({"postgres", "view"}),
    PostgresRelationKind.MATERIALIZED_VIEW: frozenset({"postgres", "view", "materialized_view"}),
}


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

    @classmethod
    def namespace(cls) -> str:
        return "dagster-postgres-connection"


@record
class PostgresRelationProps:
    """Everything a translator needs about one relation; `props` in YAML `translation` templates."""

    connection_name: str
    host: str
    port: int
    relation: PostgresRelation

    @property
    def database(self) -> str:
        return self.relation.database

    @property
    def schema(self) -> str:
        return self.relation.schema

    @property
    def name(self) -> str:
        return self.relation.name

    @property
    def kind(self) -> str:
        return self.relation.kind.value

    @property
    def table_name(self) -> str:
        return self.relation.qualified_name


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
        columns.append(
            TableColumn(
                name=column.name,
                type=column.type,
                description=column.comment,
                constraints=TableColumnConstraints(
                    nullable=column.nullable, unique=column.name in single_column_unique, other=other
                ),
            )
        )
    return TableSchema(columns=columns, constraints=TableConstraints(other=_table_constraints(relation)))


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
        return AssetKey([props.connection_name, props.database, props.schema, props.name])

    def get_asset_spec(self, props: PostgresRelationProps) -> AssetSpec:
        relation = props.relation
        metadata = {
            **TableMetadataSet(column_schema=build_column_schema(relation), table_name=relation.qualified_name),
            **PostgresMetadataSet(
                relation_kind=relation.kind.value,
                owner=relation.owner,
                row_estimate=relation.row_estimate,
                size_bytes=relation.size_bytes,
                primary_key=", ".join(relation.primary_key) or None,
                view_definition=relation.view_definition,
            ),
        }
        return AssetSpec(
            key=self.get_asset_key(props),
            description=relation.comment,
            group_name=props.connection_name,
            kinds=set(KINDS_BY_RELATION_KIND[relation.kind]),
            metadata={k: v for k, v in metadata.items() if v is not None},
        )
