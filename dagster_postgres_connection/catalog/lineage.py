"""View lineage: exact table dependencies from Postgres, column lineage from the view's SQL.

Table level: Postgres records, for the rewrite rule of every view and materialized view, a
dependency on each relation the query reads and on each column it references (`pg_depend`);
that is what stops `DROP TABLE` under a view. One query per database reads all of it
(`queries.LIST_VIEW_DEPENDENCIES`), so views on views, across schemas, or on excluded relations
are all exact. Functions a view calls are opaque to Postgres and so to us: what a function
reads inside never appears as a dependency.

Column level: Postgres does not record which output column comes from which input column.
We parse the view's definition (`pg_get_viewdef`, already normalised by Postgres: `*` expanded,
columns qualified when there is more than one source) with sqlglot's postgres dialect and walk
each output column back to source columns through joins, aliases, CTEs, subqueries, unions and
aggregates. Every source column found must also be one Postgres recorded for the view; an
output column with any source that cannot be matched is left out rather than guessed, and a
view sqlglot cannot parse simply gets no column lineage.

Parsing is pure Python (~1 ms a view with sqlglot's compiled build) while the reader's other
statements mostly wait on the server, so `view_lineage_in_background` parses on a worker
thread while the reader goes on (psycopg2 releases the GIL while it waits).
"""

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage
from sqlglot.schema import MappingSchema

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog._gc import collecting_cycles
from dagster_postgres_connection.catalog._log import get_dagster_logger
from dagster_postgres_connection.catalog.models import RelationName


@dataclass
class ViewDependencies:
    """What one view reads, as recorded by Postgres."""

    relations: list[RelationName] = field(default_factory=list)  # in (schema, name) order
    columns: set[tuple[str, str, str]] = field(default_factory=set)  # (schema, relation, column)


def read_view_dependencies(conn: Connection, schemas: Sequence[str]) -> dict[RelationName, ViewDependencies]:
    """Dependencies of every view and materialized view in `schemas`: one statement."""
    by_view: dict[RelationName, ViewDependencies] = {}
    if not schemas:
        return by_view
    for row in conn.execute(queries.LIST_VIEW_DEPENDENCIES, {"schemas": list(schemas)}):
        deps = by_view.setdefault((row.schema, row.name), ViewDependencies())
        ref = (row.ref_schema, row.ref_name)
        if not deps.relations or deps.relations[-1] != ref:  # rows come sorted by ref
            deps.relations.append(ref)
        if row.ref_column is not None:
            deps.columns.add((row.ref_schema, row.ref_name, row.ref_column))
    return by_view


ColumnSources = dict[str, list[tuple[str, str, str]]]  # output column -> (schema, relation, column)


@dataclass
class ViewLineageJob:
    """Dependencies of every view (read already) and their column lineage (being parsed)."""

    dependencies: dict[RelationName, ViewDependencies]
    _future: "Future[dict[RelationName, ColumnSources]]"

    def column_sources(self) -> dict[RelationName, ColumnSources]:
        """Waits for the worker; re-raises what it raised."""
        return self._future.result()


@contextmanager
def view_lineage_in_background(
    conn: Connection, schemas: Sequence[str], view_definitions: Mapping[RelationName, str | None]
) -> Iterator[ViewLineageJob]:
    """Reads view dependencies (one statement), then parses the views on a worker thread.

    Args:
        view_definitions: `pg_get_viewdef` of each selected view and materialized view.
    """
    dependencies = read_view_dependencies(conn, schemas)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpc-lineage")
    try:
        future = pool.submit(_column_lineage_of_views, dependencies, view_definitions)
        yield ViewLineageJob(dependencies, future)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # the reader's error wins; don't wait on parsing
        raise
    pool.shutdown()


def _column_lineage_of_views(
    dependencies: Mapping[RelationName, ViewDependencies], view_definitions: Mapping[RelationName, str | None]
) -> dict[RelationName, ColumnSources]:
    parse_schema = build_parse_schema(dependencies)
    return {
        view: column_lineage(view, view_definitions[view], view_deps, parse_schema)
        for view, view_deps in collecting_cycles(dependencies.items())  # parsed trees are cyclic
        if view in view_definitions
    }


def build_parse_schema(dependencies: Mapping[RelationName, ViewDependencies]) -> MappingSchema:
    """The relations sqlglot may resolve names against, built once per database.

    Built from what views reference (`pg_depend`), not from the column query, so parsing can
    start before that query runs. Each referenced relation gets every column any view reads
    from it: enough to resolve a view's names (`pg_get_viewdef` has expanded `*` and qualifies
    columns whenever a query has several sources). A column missing here could only make
    lineage go missing, never wrong: every source found is checked against `pg_depend`.
    Names are kept as Postgres stores them (`normalize=False`): `pg_get_viewdef` quotes every
    identifier that is not lower case, so they match exactly.
    """
    mapping: dict[str, Any] = {}  # schema -> relation -> column -> type
    for view_deps in dependencies.values():
        for schema, name, column in view_deps.columns:
            # Types do not matter for lineage; a neutral one keeps sqlglot from parsing ours.
            mapping.setdefault(schema, {}).setdefault(name, {})[column] = "text"
    return MappingSchema(mapping, dialect="postgres", normalize=False)


def column_lineage(
    view: RelationName,
    definition: str | None,
    dependencies: ViewDependencies,
    parse_schema: MappingSchema,
) -> ColumnSources:
    """Output column -> its source columns as (schema, relation, column), sorted.

    Only output columns whose every source is confirmed by `pg_depend` are returned; the rest
    are left out. Keys may include sqlglot's names for unnamed expressions: callers keep the
    view's real columns. Never raises on SQL sqlglot cannot handle.
    """
    if definition is None or not dependencies.columns:
        return {}  # no definition when another session locks the view (the reader warns)
    try:
        # trim_selects=False: we only read the leaves, and trimming copies the query per column
        # (2.5x slower on Pagila-like views).
        nodes = lineage(None, definition, schema=parse_schema, dialect="postgres", trim_selects=False)
    except Exception as error:  # a parser limit (syntax, recursion) must never fail the sync
        get_dagster_logger().info(
            f"No column lineage for view `{view[0]}.{view[1]}`: sqlglot could not follow its "
            f"definition ({type(error).__name__}). Its table dependencies are exact regardless."
        )
        return {}
    assert isinstance(nodes, dict)
    result: ColumnSources = {}
    for output, node in nodes.items():
        sources = _confirmed_sources(node, dependencies)
        if sources:
            result[output] = sorted(sources)
    return result


def _confirmed_sources(node: Node, dependencies: ViewDependencies) -> set[tuple[str, str, str]] | None:
    """Source columns of one output column, or None when any of them is not confirmed."""
    sources: set[tuple[str, str, str]] = set()
    for leaf in node.walk():
        if leaf.downstream:
            continue
        if not isinstance(leaf.expression, exp.Table):
            continue  # a constant or `count(*)`: contributes no column
        relation = _resolve_relation(leaf.expression, dependencies)
        column = _column_name(leaf.name)
        if relation is None or column is None or (*relation, column) not in dependencies.columns:
            return None
        sources.add((*relation, column))
    return sources


def _resolve_relation(table: exp.Table, dependencies: ViewDependencies) -> RelationName | None:
    """Matches a table of the parsed SQL to one relation Postgres recorded for the view.

    `pg_get_viewdef` leaves out the schema of relations visible on the search path, so an
    unqualified name is matched by name among the view's dependencies, and only when that
    is unambiguous.
    """
    candidates = [
        key for key in dependencies.relations if key[1] == table.name and (not table.db or key[0] == table.db)
    ]
    return candidates[0] if len(candidates) == 1 else None


def _column_name(qualified: str) -> str | None:
    """`f."Weird Col"` -> `Weird Col`, as sqlglot names a leaf."""
    try:
        return exp.to_column(qualified, dialect="postgres").name or None
    except SqlglotError:
        return None
