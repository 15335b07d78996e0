"""Functions and procedures of the selected schemas, the triggers that run them, and their lineage.

Two statements per database (`queries.LIST_ROUTINES`, `queries.LIST_TRIGGERS`), whatever the
number of routines. Bodies of `sql` and `plpgsql` routines are parsed (`routine_lineage.py`) on
a worker thread once the columns are built, while the reader's other statements run; once the
relations are built, each routine becomes a `PostgresRoutine` (in `PostgresDatabase.routines`)
and each relation a routine writes gets a `PostgresRoutineLineage` in `written_by` (one per
routine and firing trigger), each relation one reads its signature in `read_by`.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dagster_shared.record import replace
from sqlalchemy import Connection

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog._gc import collecting_cycles
from dagster_postgres_connection.catalog._log import get_dagster_logger
from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresColumnLineage,
    PostgresColumnRef,
    PostgresRelation,
    PostgresRelationRef,
    PostgresRoutine,
    PostgresRoutineLineage,
    PostgresRoutineWrite,
    PostgresTrigger,
    RelationName,
)
from dagster_postgres_connection.catalog.routine_lineage import (
    RelationCatalog,
    RoutineAnalysis,
    WriteLineage,
    analyze_routine,
    merge_analyses,
    search_path_of,
)
from dagster_postgres_connection.catalog.selection import select_schema
from dagster_postgres_connection.config import PostgresFilters


@dataclass
class RoutineRows:
    """The rows of the routines of selected schemas and of their triggers, read in the transaction."""

    routines: list[Any] = field(default_factory=list)
    triggers_by_routine: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))


def read_routine_rows(conn: Connection, filters: PostgresFilters) -> RoutineRows:
    """Routines of the schemas the filters select and the role may use; two statements."""
    rows = RoutineRows()
    for row in conn.execute(queries.LIST_ROUTINES):
        if row.has_usage and select_schema(filters, row.schema):
            rows.routines.append(row)
    if rows.routines:
        for row in conn.execute(queries.LIST_TRIGGERS):
            rows.triggers_by_routine[row.routine_oid].append(row)
    else:
        conn.execute(queries.LIST_TRIGGERS).close()  # same statements whatever was found
    rows.routines.sort(key=lambda r: (r.schema, r.name, r.arguments))
    return rows


# Per routine (by oid): its triggers and the analysis of its body once per firing table (one
# analysis with no trigger when none fires it; none when its body is not read).
RoutineAnalyses = dict[int, tuple[list[PostgresTrigger], list[tuple[PostgresTrigger | None, RoutineAnalysis]]]]


@contextmanager
def routine_analysis_in_background(
    rows: RoutineRows,
    relation_names: Iterable[RelationName],
    columns: Callable[[], Mapping[RelationName, Sequence[PostgresColumn]]],
) -> Iterator["Future[RoutineAnalyses]"]:
    """Parses the routines' bodies on a worker thread while the reader's statements run (psycopg2
    releases the GIL while it waits): ~1 ms a routine, 3.3 s at 3,000 routines if done in line.

    Args:
        columns: Gives the selected relations' columns (it may wait for them to be built).
    """
    names = frozenset(relation_names)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpc-routines")
    try:
        yield pool.submit(lambda: analyze_routines(rows, names, columns()))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # the reader's error wins
        raise
    pool.shutdown()


def analyze_routines(
    rows: RoutineRows,
    relation_names: frozenset[RelationName],
    columns: Mapping[RelationName, Sequence[PostgresColumn]],
) -> RoutineAnalyses:
    """What each `sql` / `plpgsql` body writes and reads (`routine_lineage.py`).

    Args:
        relation_names: Every relation of the database (any non-system schema): what an
            unqualified name may resolve to.
        columns: The selected relations' columns: they confirm column lineage.
    """
    analyses: RoutineAnalyses = {}
    if not any(row.body is not None for row in rows.routines):  # no body to read: no catalog to build
        for row in rows.routines:
            analyses[row.oid] = (sorted(map(_trigger, rows.triggers_by_routine.get(row.oid, ())), key=_trigger_order), [])
        return analyses
    # ~0.4 s at 50k tables, on this worker thread (the columns sqlglot resolves names against)
    catalog = RelationCatalog(relations=relation_names, columns={k: [c.name for c in v] for k, v in columns.items()})
    parse_schema = catalog.parse_schema()
    for row in collecting_cycles(rows.routines):  # parsed bodies are cyclic garbage (see _gc.py)
        triggers = sorted(map(_trigger, rows.triggers_by_routine.get(row.oid, ())), key=_trigger_order)
        search_path = search_path_of(row.config, row.schema, row.owner)
        found: list[tuple[PostgresTrigger | None, RoutineAnalysis]] = []
        if row.body is not None:
            for trigger in triggers or [None]:
                firing = (trigger.schema, trigger.table) if trigger else None
                found.append((trigger, analyze_routine(row.body, row.language, search_path, catalog, parse_schema, firing)))
        analyses[row.oid] = (triggers, found)
    return analyses


def build_routines(
    database: str,
    rows: RoutineRows,
    analyses: RoutineAnalyses,
    relations: Sequence[PostgresRelation],
) -> tuple[list[PostgresRelation], list[PostgresRoutine]]:
    """The routines as records, and `relations` with `written_by` / `read_by` filled in.

    Args:
        relations: The built records of the selected relations (a partition stands for its
            root unless partitions are exposed; their columns order column lineage).
    """
    if not rows.routines:
        # No lookup tables over every relation for nothing: they are built when the `sync` CLI's
        # RSS peaks (every record built); measured at 50k tables without routines: -2.5 MB.
        return list(relations), []
    ref = relation_refs(relations)
    column_order = {(r.schema, r.name): [c.name for c in r.columns] for r in relations}

    routines: list[PostgresRoutine] = []
    written_by: dict[RelationName, list[PostgresRoutineLineage]] = defaultdict(list)
    read_by: dict[RelationName, list[str]] = defaultdict(list)
    dynamic: list[str] = []
    for row in rows.routines:
        triggers, found = analyses[row.oid]
        merged = merge_analyses(analysis for _, analysis in found)
        routine = PostgresRoutine(
            schema=row.schema,
            name=row.name,
            kind=row.kind,
            arguments=row.arguments,
            language=row.language,
            return_type=row.return_type,
            volatility=row.volatility,
            security_definer=row.security_definer,
            owner=row.owner,
            comment=row.comment,
            search_path=[p for p in _config_search_path(row.config)] or None,
            triggers=triggers,
            writes=[
                PostgresRoutineWrite(
                    relation=ref(target),
                    operations=write.operations,
                    reads=[ref(name) for name in sorted(write.reads)],
                    column_lineage=_column_lineage(write, column_order.get(target, ()), ref),
                )
                for target, write in sorted(merged.writes.items())
            ],
            reads=[ref(name) for name in sorted(merged.reads)],
            dynamic_sql=merged.dynamic_sql,
            unparsed=merged.unparsed,
            unresolved=sorted(merged.unresolved),
        )
        routines.append(routine)
        if routine.dynamic_sql:
            dynamic.append(routine.signature)
        for trigger, analysis in found:
            for target, write in sorted(analysis.writes.items()):
                written_by[target].append(
                    PostgresRoutineLineage(
                        routine=routine.signature,
                        kind=routine.kind,
                        operations=write.operations,
                        reads=[ref(name) for name in sorted(write.reads)],
                        column_lineage=_column_lineage(write, column_order.get(target, ()), ref),
                        trigger=describe_trigger(trigger) if trigger else None,
                    )
                )
        for name in merged.reads:
            read_by[name].append(routine.signature)
    if dynamic:
        get_dagster_logger().info(
            f"Database `{database}`: {len(dynamic)} routine(s) run dynamic SQL (`EXECUTE`), whose "
            f"statements exist only at run time: their lineage is not followed ({', '.join(dynamic[:5])}"
            f"{', ...' if len(dynamic) > 5 else ''})."
        )
    updated = [
        replace(r, written_by=written_by.get(key, ()), read_by=read_by.get(key, ()))
        if (key := (r.schema, r.name)) in written_by or key in read_by
        else r
        for r in relations
    ]
    return updated, routines


def relation_refs(relations: Sequence[PostgresRelation]) -> Callable[[RelationName], PostgresRelationRef]:
    """`(schema, name) -> PostgresRelationRef`, naming a selected partition's root."""
    by_name = {(r.schema, r.name): r for r in relations}

    def ref(name: RelationName) -> PostgresRelationRef:
        record = by_name.get(name)
        if record is not None and record.partition_of is not None:
            return PostgresRelationRef(
                schema=name[0], name=name[1],
                root_schema=record.partition_of.root_schema or record.partition_of.schema,
                root_name=record.partition_of.root_name or record.partition_of.name,
            )
        return PostgresRelationRef(schema=name[0], name=name[1])

    return ref


def _column_lineage(
    write: WriteLineage, target_columns: Sequence[str], ref: Any
) -> list[PostgresColumnLineage]:
    """Confirmed column sources, in the target's column order (others after, by name)."""
    order = {name: index for index, name in enumerate(target_columns)}
    return [
        PostgresColumnLineage(
            column=column,
            inputs=[PostgresColumnRef(relation=ref((schema, name)), column=source) for schema, name, source in sorted(sources)],
        )
        for column, sources in sorted(write.columns.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
        if sources
    ]


def _trigger_order(trigger: PostgresTrigger) -> tuple[str, str, str]:
    return (trigger.schema, trigger.table, trigger.name)


def _trigger(row: Any) -> PostgresTrigger:
    return PostgresTrigger(
        name=row.name, schema=row.schema, table=row.table, timing=row.timing,
        events=list(row.events), level=row.level, enabled=row.enabled,
    )


def describe_trigger(trigger: PostgresTrigger) -> str:
    """`orders_audit on public.orders (AFTER INSERT OR UPDATE, ROW)`."""
    disabled = ", disabled" if not trigger.enabled else ""
    return (
        f"{trigger.name} on {trigger.schema}.{trigger.table} "
        f"({trigger.timing} {' OR '.join(trigger.events)}, {trigger.level}{disabled})"
    )


def _config_search_path(config: Sequence[str] | None) -> list[str]:
    """The routine's own `SET search_path`, as written (empty when it has none)."""
    for setting in config or ():
        name, _, value = setting.partition("=")
        if name.strip().lower() == "search_path":
            return [part.strip() for part in value.split(",") if part.strip()]
    return []


