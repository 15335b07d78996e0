"""The Postgres object model as Dagster metadata: the translator's helpers.

Column types keep Postgres's own spelling (`format_type`); what the type alone does not say
(enum labels, a domain's base type, identity and generated columns) goes into the column's
constraint notes, next to keys and defaults. Table-level notes list check and exclusion
constraints; indexes, partitions, inheritance and foreign-table details get keys of their own
in `PostgresMetadataSet`.
"""

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresIndex,
    PostgresRelation,
)
from dagster_postgres_connection.catalog.partitions import summarize_bounds


def postgres_uri(host: str, port: int, database: str) -> str:
    """`postgresql://host:port/database`, never with a user or password (libpq URI syntax)."""
    if host.startswith("/"):  # a unix socket directory is percent-encoded in the host part
        host = quote(host, safe="")
    elif ":" in host:  # IPv6
        host = f"[{host}]"
    return f"postgresql://{host}:{port}/{quote(database, safe='')}"


def column_notes(column: PostgresColumn) -> list[str]:
    """What `type` alone does not tell, e.g. `enum ('G', 'PG')`, `domain over bigint`."""
    notes = []
    if column.enum_labels:
        notes.append("enum (" + ", ".join(_quote_literal(label) for label in column.enum_labels) + ")")
    if column.domain_base_type:
        notes.append(f"domain over {column.domain_base_type}")
    if column.identity:
        notes.append(f"generated {column.identity.lower()} as identity")
    if column.generated:
        notes.append(f"generated always as ({column.generation_expression}) {column.generated.lower()}")
    return notes


def table_constraint_notes(relation: PostgresRelation) -> list[str]:
    """Check and exclusion constraints as Postgres prints them, with their names."""
    return [
        f"CONSTRAINT {constraint.name} {constraint.definition}"
        for constraint in (*relation.check_constraints, *relation.exclusion_constraints)
    ]


def describe_indexes(indexes: Sequence[PostgresIndex]) -> str | None:
    """One line per index: `film_pkey: btree (film_id), primary key`."""
    lines = []
    for index in indexes:
        flags = ["primary key"] if index.primary else ["unique"] if index.unique else []
        lines.append(", ".join([f"{index.name}: {index.method} ({', '.join(index.columns)})", *flags]))
    return "\n".join(lines) or None


def describe_options(options: Mapping[str, str]) -> str | None:
    return ", ".join(f"{name}={value}" for name, value in options.items()) or None


def structure_metadata(relation: PostgresRelation) -> dict[str, Any]:
    """Fields of `PostgresMetadataSet` for a partitioned root, a partition or an inheritance child."""
    fields: dict[str, Any] = {}
    partitioning = relation.partitioning
    if partitioning is not None:
        fields.update(
            partition_strategy=partitioning.strategy,
            partition_key=partitioning.key,
            partition_count=len(partitioning.leaf_partitions),
            partition_bounds=summarize_bounds(partitioning) or None,
        )
    if relation.partition_of is not None:
        fields.update(
            partition_of=f"{relation.partition_of.schema}.{relation.partition_of.name}",
            partition_bound=relation.partition_bound,
        )
    if relation.inherits_from:
        fields["inherits_from"] = ", ".join(f"{ref.schema}.{ref.name}" for ref in relation.inherits_from)
    foreign = relation.foreign_table
    if foreign is not None:
        fields.update(
            foreign_server=foreign.server,
            foreign_data_wrapper=foreign.wrapper,
            foreign_server_options=describe_options(foreign.server_options),
            foreign_table_options=describe_options(foreign.table_options),
        )
    return fields


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
