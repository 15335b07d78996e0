"""Everything about a relation beyond its columns and keys, read in a fixed number of statements.

The reader calls `read_relation_details` once per database and merges the result into each
`PostgresRelation`: view dependencies and column lineage (`lineage.py`), partitions and
inheritance (`partitions.py`), indexes, check and exclusion constraints, and foreign tables.
Column details (enum labels, domain base types, identity, generated expressions) come with
the column query itself, through `column_fields`.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog.connection import execute_despite_drops
from dagster_postgres_connection.catalog.lineage import (
    build_parse_schema,
    column_lineage,
    read_view_dependencies,
)
from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresColumnLineage,
    PostgresColumnRef,
    PostgresConstraint,
    PostgresForeignTable,
    PostgresIndex,
)
from dagster_postgres_connection.catalog.partitions import PartitionTree

RelationKey = tuple[str, str]  # (schema, name)

_IDENTITY = {"a": "ALWAYS", "d": "BY DEFAULT"}
_GENERATED = {"s": "STORED", "v": "VIRTUAL"}
# Option names whose values may be secrets, for wrappers that accept anything (no validator).
_SECRET_OPTION = re.compile(r"pass|secret|token|credential|key", re.IGNORECASE)
REDACTED = "<redacted>"


def column_fields(row: Any) -> dict[str, Any]:
    """`PostgresColumn` fields from one `queries.LIST_COLUMNS` row."""
    generated = _GENERATED.get(row.generated or "")
    return {
        "name": row.name,
        "type": row.type,
        "nullable": row.nullable,
        # pg_attrdef holds a generated column's expression: it is not a default.
        "default": None if generated else row.default,
        "comment": row.comment,
        "enum_labels": list(row.enum_labels or ()),
        "domain_base_type": row.domain_base_type,
        "identity": _IDENTITY.get(row.identity or ""),
        "generated": generated,
        "generation_expression": row.default if generated else None,
    }


def read_relation_details(
    conn: Connection,
    relation_rows: Sequence[Any],
    selected: Iterable[RelationKey],
    columns: Mapping[RelationKey, Sequence[PostgresColumn]],
) -> dict[RelationKey, dict[str, Any]]:
    """Extra `PostgresRelation` fields for each selected relation.

    Args:
        relation_rows: Every row of `queries.LIST_RELATIONS`, selected or not: partitions of a
            selected root count even when they are filtered out.
        selected: The relations that become part of the snapshot.
        columns: Their columns, to resolve names in view definitions.
    """
    selected = list(selected)
    schemas = sorted({schema for schema, _ in selected})
    rows = {(row.schema, row.name): row for row in relation_rows}
    tree = PartitionTree.read(conn, relation_rows)
    dependencies = read_view_dependencies(conn, schemas)
    indexes = _read_indexes(conn, schemas)
    check_constraints, exclusion_constraints = _read_constraints(conn, schemas)
    foreign_tables = _read_foreign_tables(conn, schemas)
    parse_schema = build_parse_schema({key: [c.name for c in cols] for key, cols in columns.items()})

    details: dict[RelationKey, dict[str, Any]] = {}
    for key in selected:
        fields = tree.relation_fields(key)
        if key in dependencies:
            view_deps = dependencies[key]
            fields["deps"] = [tree.ref(ref) for ref in view_deps.relations]
            output_columns = [c.name for c in columns.get(key, ())]
            lineage = column_lineage(key, rows[key].view_definition, output_columns, view_deps, parse_schema)
            fields["column_lineage"] = [
                PostgresColumnLineage(
                    column=column,
                    inputs=[
                        PostgresColumnRef(relation=tree.ref((schema, name)), column=source)
                        for schema, name, source in lineage[column]
                    ],
                )
                for column in output_columns
                if column in lineage
            ]
        for name, values in (
            ("indexes", indexes),
            ("check_constraints", check_constraints),
            ("exclusion_constraints", exclusion_constraints),
        ):
            if key in values:
                fields[name] = values[key]
        if key in foreign_tables:
            fields["foreign_table"] = foreign_tables[key]
        details[key] = fields
    return details


def _read_indexes(conn: Connection, schemas: Sequence[str]) -> dict[RelationKey, list[PostgresIndex]]:
    indexes: dict[RelationKey, list[PostgresIndex]] = defaultdict(list)
    if schemas:
        for row in execute_despite_drops(conn, queries.LIST_INDEXES, {"schemas": list(schemas)}):
            indexes[(row.schema, row.relation)].append(
                PostgresIndex(
                    name=row.name,
                    columns=list(row.columns),
                    unique=row.is_unique,
                    primary=row.is_primary,
                    method=row.method,
                    definition=row.definition,
                )
            )
    return indexes


def _read_constraints(
    conn: Connection, schemas: Sequence[str]
) -> tuple[dict[RelationKey, list[PostgresConstraint]], dict[RelationKey, list[PostgresConstraint]]]:
    checks: dict[RelationKey, list[PostgresConstraint]] = defaultdict(list)
    exclusions: dict[RelationKey, list[PostgresConstraint]] = defaultdict(list)
    if schemas:
        for row in execute_despite_drops(conn, queries.LIST_CHECK_AND_EXCLUSION_CONSTRAINTS, {"schemas": list(schemas)}):
            target = checks if row.type == "c" else exclusions
            target[(row.schema, row.relation)].append(PostgresConstraint(name=row.name, definition=row.definition))
    return checks, exclusions


def _read_foreign_tables(conn: Connection, schemas: Sequence[str]) -> dict[RelationKey, PostgresForeignTable]:
    if not schemas:
        return {}
    return {
        (row.schema, row.relation): PostgresForeignTable(
            server=row.server,
            wrapper=row.wrapper,
            server_options=parse_options(row.server_options),
            table_options=parse_options(row.table_options),
        )
        for row in conn.execute(queries.LIST_FOREIGN_TABLES, {"schemas": list(schemas)})
    }


def parse_options(options: Sequence[str] | None) -> dict[str, str]:
    """`{host=db,password=x}` -> `{"host": "db", "password": "<redacted>"}`."""
    parsed: dict[str, str] = {}
    for option in options or ():
        name, _, value = option.partition("=")
        parsed[name] = REDACTED if _SECRET_OPTION.search(name) else value
    return parsed
