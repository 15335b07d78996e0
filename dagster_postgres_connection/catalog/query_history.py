"""Query history (opt-in `query_history: true`): lineage and usage from `pg_stat_statements`.

Where the extension is installed in a database and the role may read every role's statements
(`pg_read_all_stats`, or a superuser), one statement reads the database's entries (the most
called first, at most `MAX_STATEMENTS`), after one that checks the extension, its columns and
the privilege: two statements per database whatever the number of relations or entries. Each
statement's normalized text (constants as `$1`) is parsed like a routine's SQL body
(`routine_lineage.py`), on a worker thread while the reader's other statements run: a relation it writes from others (`INSERT ... SELECT`, `CREATE TABLE AS`,
`MERGE`, `UPDATE ... FROM`) gets `written_by_queries` (and deps on what it read), and every
relation it names adds its calls and rows to the relation's `query_usage`.

Unqualified names resolve in `"$user", public`, the default search_path, for the role that ran
the statement. pg_stat_statements keeps no time of last execution, so none is reported; its
counters run since its last reset.

PostgreSQL 13 (extension 1.8) renamed `total_time` to `total_exec_time`: the check reads which
one the installed extension has. Without the extension, the privilege, or when reading fails
(e.g. the library is not in `shared_preload_libraries`), the database's `query_history_problem`
says why and how to fix it; `read_catalog` warns once for all databases, nothing else changes.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dagster_shared.record import replace
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from dagster_postgres_connection.catalog._gc import collecting_cycles
from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresColumnLineage,
    PostgresColumnRef,
    PostgresQueryLineage,
    PostgresQueryUsage,
    PostgresRelation,
    PostgresRelationRef,
    RelationName,
)
from dagster_postgres_connection.catalog.routine_lineage import (
    RelationCatalog,
    RoutineAnalysis,
    analyze_routine,
    shorten_statement,
)
from dagster_postgres_connection.catalog.routines import relation_refs

# pg_stat_statements keeps 5,000 entries by default (`pg_stat_statements.max`).
MAX_STATEMENTS = 5000
# Executed statements kept per written relation, the most called first.
_LINEAGE_PER_RELATION = 10
_QUERY_PREVIEW = 300

# Where the extension is, which columns it has, and whether the role may read all of it.
PROBE_PG_STAT_STATEMENTS = text(
    """
    SELECT
        n.nspname AS schema,
        EXISTS (
            SELECT 1 FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attname = 'total_exec_time' AND NOT a.attisdropped
        ) AS has_total_exec_time,
        has_table_privilege(c.oid, 'SELECT') AS can_select,
        pg_has_role('pg_read_all_stats', 'USAGE') AS reads_all_stats
    FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'pg_stat_statements'
    WHERE e.extname = 'pg_stat_statements'
    """
)


def statements_query(schema: str, *, has_total_exec_time: bool) -> str:
    """The entries of the current database that may name relations, the most called first."""
    quoted = '"' + schema.replace('"', '""') + '"'
    total_time = "total_exec_time" if has_total_exec_time else "total_time"  # PG 13 renamed it
    return f"""
    SELECT pg_get_userbyid(s.userid) AS role, s.query, s.calls, s.rows, s.{total_time} AS total_ms
    FROM {quoted}.pg_stat_statements s
    WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND s.query ~* '^\\s*(with|select|insert|update|delete|merge|create|table)\\M'
    ORDER BY s.calls DESC
    LIMIT {MAX_STATEMENTS}
    """


@dataclass
class QueryHistoryRows:
    rows: list[Any] = field(default_factory=list)
    problem: str | None = None  # why nothing was read, with the fix


def read_query_history_rows(conn: Connection, database: str, username: str) -> QueryHistoryRows:
    """The statements pg_stat_statements recorded in this database; never fails the read.

    The read runs in a savepoint: if it fails (the extension's library not preloaded, a revoked
    grant), the catalog transaction goes on as if query history were off.
    """
    probe = conn.execute(PROBE_PG_STAT_STATEMENTS).first()
    if probe is None:
        return QueryHistoryRows(
            problem=f"pg_stat_statements is not installed in database `{database}`: run "
            f"`CREATE EXTENSION pg_stat_statements` there, with `shared_preload_libraries = "
            f"'pg_stat_statements'` in postgresql.conf"
        )
    if not (probe.can_select and probe.reads_all_stats):
        return QueryHistoryRows(
            problem=f"role `{username}` may not read every role's statements in database `{database}`: "
            f"`GRANT pg_read_all_stats TO {username}`"
            + ("" if probe.can_select else f" and `GRANT SELECT ON {probe.schema}.pg_stat_statements TO {username}`")
        )
    query = statements_query(probe.schema, has_total_exec_time=probe.has_total_exec_time)
    try:
        with conn.begin_nested():
            rows = conn.execute(text(query)).all()
    except DBAPIError as error:
        reason = str(getattr(error.orig, "pgerror", None) or error.orig or error).strip().splitlines()[0]
        return QueryHistoryRows(
            problem=f"reading pg_stat_statements in database `{database}` failed ({reason.removeprefix('ERROR:  ')}): "
            f"check that `shared_preload_libraries` includes `pg_stat_statements` and restart the server"
        )
    return QueryHistoryRows(rows=list(rows))


@dataclass
class RelationQueryHistory:
    usage: dict[RelationName, PostgresQueryUsage] = field(default_factory=dict)
    lineage: dict[RelationName, list[PostgresQueryLineage]] = field(default_factory=dict)


AnalyzedStatements = list[tuple[Any, RoutineAnalysis]]  # (pg_stat_statements row, what it reads and writes)


@contextmanager
def query_history_in_background(
    history: QueryHistoryRows | None,
    relation_names: Iterable[RelationName],
    columns: Callable[[], Mapping[RelationName, Sequence[PostgresColumn]]],
) -> Iterator["Future[AnalyzedStatements] | None"]:
    """Parses the recorded statements on a worker thread while the reader's statements run
    (~1 ms a statement: ~4 s for 5,000); None when there is nothing to parse."""
    if history is None or not history.rows:
        yield None
        return
    names = frozenset(relation_names)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpc-query-history")
    try:
        yield pool.submit(lambda: analyze_statements(history.rows, names, columns()))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # the reader's error wins
        raise
    pool.shutdown()


def analyze_statements(
    rows: Sequence[Any], relation_names: frozenset[RelationName], columns: Mapping[RelationName, Sequence[PostgresColumn]]
) -> AnalyzedStatements:
    """What each recorded statement reads and writes, its names resolved in `"$user", public`."""
    catalog = RelationCatalog(relations=relation_names, columns={k: [c.name for c in v] for k, v in columns.items()})
    parse_schema = catalog.parse_schema()
    analyzed: AnalyzedStatements = []
    for row in collecting_cycles(rows):  # parsed statements are cyclic garbage (see _gc.py)
        search_path = list(dict.fromkeys([row.role, "public"])) if row.role else ["public"]
        analyzed.append((row, analyze_routine(row.query, "sql", search_path, catalog, parse_schema)))
    return analyzed


def relation_query_history(
    analyzed: AnalyzedStatements,
    column_order: Mapping[RelationName, Sequence[str]],
    ref: Callable[[RelationName], PostgresRelationRef],
) -> RelationQueryHistory:
    """Usage per relation and the lineage of executed writes, from the analyzed statements."""
    calls: dict[RelationName, int] = defaultdict(int)
    rows_by_relation: dict[RelationName, int] = defaultdict(int)
    statements: dict[RelationName, int] = defaultdict(int)
    lineage: dict[RelationName, list[PostgresQueryLineage]] = defaultdict(list)
    for row, analysis in analyzed:
        for name in analysis.reads | set(analysis.writes):
            calls[name] += row.calls
            rows_by_relation[name] += row.rows
            statements[name] += 1
        for target, write in analysis.writes.items():
            if not write.reads or len(lineage[target]) >= _LINEAGE_PER_RELATION:
                continue  # rows come most called first
            order = {name: index for index, name in enumerate(column_order.get(target, ()))}
            lineage[target].append(
                PostgresQueryLineage(
                    query=_shorten(row.query),
                    operations=write.operations,
                    calls=row.calls,
                    rows=row.rows,
                    role=row.role,
                    reads=[ref(name) for name in sorted(write.reads)],
                    column_lineage=[
                        PostgresColumnLineage(
                            column=column,
                            inputs=[PostgresColumnRef(relation=ref((s, r)), column=c) for s, r, c in sorted(sources)],
                        )
                        for column, sources in sorted(write.columns.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
                        if sources
                    ],
                )
            )
    return RelationQueryHistory(
        usage={
            name: PostgresQueryUsage(calls=calls[name], rows=rows_by_relation[name], statements=statements[name])
            for name in calls
        },
        lineage={name: found for name, found in lineage.items() if found},
    )


def _shorten(query: str) -> str:
    return shorten_statement(query, _QUERY_PREVIEW)


def attach_query_history(relations: Sequence[PostgresRelation], analyzed: AnalyzedStatements) -> list[PostgresRelation]:
    """`relations` with `query_usage` and `written_by_queries` from the analyzed statements."""
    if not analyzed:
        return list(relations)
    column_order = {(r.schema, r.name): [c.name for c in r.columns] for r in relations}
    found = relation_query_history(analyzed, column_order, relation_refs(relations))
    return [
        replace(r, query_usage=found.usage.get(key), written_by_queries=found.lineage.get(key, ()))
        if (key := (r.schema, r.name)) in found.usage
        else r
        for r in relations
    ]
