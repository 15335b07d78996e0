"""Everything about a relation beyond its columns and keys, read in a fixed number of statements.

The reader calls `read_relation_details` once per database and builds each `PostgresRelation`
with what it returns (`RelationDetails`): view dependencies and column lineage (`lineage.py`), partitions and
inheritance (`partitions.py`), indexes, check and exclusion constraints, and foreign tables.
Column details (enum labels, domain base types, identity, generated expressions) come with
the column query itself (`queries.LIST_COLUMNS`).
"""

import operator
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog._intern import intern, interned
from dagster_postgres_connection.catalog.connection import execute_despite_drops
from dagster_postgres_connection.catalog.lineage import ViewLineageJob
from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresColumnLineage,
    PostgresColumnRef,
    PostgresConstraint,
    PostgresForeignTable,
    PostgresIndex,
    PostgresRelationRef,
    RelationName,
)
from dagster_postgres_connection.catalog.partitions import PartitionPlacement, PartitionTree

# The order the statements' ORDER BY gave before the server stopped sorting (spills at 50k tables):
# `name` columns sort in the C collation, which is how Python compares str.
BY_RELATION_AND_NAME = operator.attrgetter("schema", "relation", "name")

# Option names whose values may be secrets, for wrappers that accept anything (no validator).
_SECRET_OPTION = re.compile(r"pass|secret|token|credential|key", re.IGNORECASE)
REDACTED = "<redacted>"


@dataclass
class RelationDetails:
    """One relation's fields beyond its `LIST_RELATIONS` row, columns and keys."""

    placement: PartitionPlacement
    indexes: list[PostgresIndex] = field(default_factory=list)
    check_constraints: list[PostgresConstraint] = field(default_factory=list)
    exclusion_constraints: list[PostgresConstraint] = field(default_factory=list)
    foreign_table: PostgresForeignTable | None = None
    deps: list[PostgresRelationRef] = field(default_factory=list)  # views: what they read
    column_lineage: list[PostgresColumnLineage] = field(default_factory=list)


def read_relation_details(
    conn: Connection,
    relation_rows: Sequence[Any],
    selected: Iterable[RelationName],
    columns: Callable[[], Mapping[RelationName, Sequence[PostgresColumn]]],
    views: ViewLineageJob,
) -> dict[RelationName, "RelationDetails"]:
    """What each selected relation's record holds beyond its row, columns and keys.

    Args:
        relation_rows: Every row of `queries.LIST_RELATIONS`, selected or not: partitions of a
            selected root count even when they are filtered out.
        selected: The relations that become part of the snapshot.
        columns: Gives their columns, in order; called after this function's statements have
            run, as the columns may still be being built on another thread.
        views: View dependencies, and their column lineage being parsed meanwhile (`lineage.py`).
    """
    selected = list(selected)
    schemas = sorted({schema for schema, _ in selected})
    tree = PartitionTree.read(conn, relation_rows)
    indexes = _read_indexes(conn, schemas)
    check_constraints, exclusion_constraints = _read_constraints(conn, schemas)
    foreign_tables = _read_foreign_tables(conn, schemas)
    dependencies = views.dependencies
    sources_by_view = views.column_sources()
    columns_by_key = columns()

    details: dict[RelationName, RelationDetails] = {}
    for key in selected:
        relation = RelationDetails(
            placement=tree.placement(key),
            indexes=indexes.get(key, []),
            check_constraints=check_constraints.get(key, []),
            exclusion_constraints=exclusion_constraints.get(key, []),
            foreign_table=foreign_tables.get(key),
        )
        if key in dependencies:
            relation.deps = [tree.ref(ref) for ref in dependencies[key].relations]
            sources = sources_by_view.get(key, {})
            # In the view's column order; sqlglot's names for unnamed expressions drop out here.
            relation.column_lineage = [
                PostgresColumnLineage(
                    column=column.name,
                    inputs=[
                        PostgresColumnRef(relation=tree.ref((schema, name)), column=source)
                        for schema, name, source in sources[column.name]
                    ],
                )
                for column in columns_by_key.get(key, ())
                if column.name in sources
            ]
        details[key] = relation
    return details


def _read_indexes(conn: Connection, schemas: Sequence[str]) -> dict[RelationName, list[PostgresIndex]]:
    indexes: dict[RelationName, list[PostgresIndex]] = defaultdict(list)
    if schemas:
        for row in execute_despite_drops(conn, queries.LIST_INDEXES, {"schemas": list(schemas)}):
            indexes[(row.schema, row.relation)].append(
                PostgresIndex(
                    name=row.name,
                    columns=interned(row.columns),
                    unique=row.is_unique,
                    primary=row.is_primary,
                    method=intern(row.method),
                    definition=row.definition,
                    orderings=interned(row.orderings),
                    include_columns=interned(row.include_columns),
                    predicate=row.predicate,
                    nulls_not_distinct=row.nulls_not_distinct,
                )
            )
    for relation_indexes in indexes.values():  # by name: LIST_INDEXES leaves the order to us
        relation_indexes.sort(key=_name)
    return indexes


def _name(index: PostgresIndex) -> str:
    return index.name


def _read_constraints(
    conn: Connection, schemas: Sequence[str]
) -> tuple[dict[RelationName, list[PostgresConstraint]], dict[RelationName, list[PostgresConstraint]]]:
    checks: dict[RelationName, list[PostgresConstraint]] = defaultdict(list)
    exclusions: dict[RelationName, list[PostgresConstraint]] = defaultdict(list)
    if schemas:
        rows = execute_despite_drops(conn, queries.LIST_CHECK_AND_EXCLUSION_CONSTRAINTS, {"schemas": list(schemas)})
        for row in sorted(rows, key=BY_RELATION_AND_NAME):  # the statement leaves the order to us
            target = checks if row.type == "c" else exclusions
            target[(row.schema, row.relation)].append(PostgresConstraint(name=row.name, definition=row.definition))
    return checks, exclusions


def _read_foreign_tables(conn: Connection, schemas: Sequence[str]) -> dict[RelationName, PostgresForeignTable]:
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
