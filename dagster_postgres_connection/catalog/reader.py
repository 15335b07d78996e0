"""read_catalog(settings) -> PostgresCatalogSnapshot: the one way we read Postgres.

Per database, in one read-only REPEATABLE READ transaction, a fixed number of statements
whatever the number of relations: our `pg_catalog` queries for relations (kind, owner, comment,
privileges, size, row estimate, view definition) and columns (types as `format_type` spells
them), primary, unique and foreign keys. SQLAlchemy's Inspector is the reference reflection,
but its `get_multi_*` calls cost two heavy statements per schema (~5 s at 50 schemas and 10k
tables, benchmarks/README.md), so keys come from one statement each, in the Inspector's shape,
and `test_keys_match_inspector.py` holds them to the Inspector's answers. Databases are read
concurrently, with at most `max_concurrent_connections` connections open.

DDL running meanwhile never tears the result: everything comes from the transaction's snapshot,
and relations dropped since are ruled out (`execute_despite_drops`); other sessions' locks are
never waited on (`queries._LOCKED_RELATIONS_CTE`).

What the role cannot read is skipped and reported: a database without CONNECT, a schema
without USAGE, a relation without SELECT.
"""

import hashlib
import json
import operator
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from dagster_postgres_connection.access.readability import Readability
from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog._gc import paused_gc
from dagster_postgres_connection.catalog._intern import intern, interned, interned_or_none
from dagster_postgres_connection.catalog._log import get_dagster_logger
from dagster_postgres_connection.catalog.columns import COLUMN_BATCH, ColumnBuilder
from dagster_postgres_connection.catalog.connection import (
    catalog_transaction,
    create_catalog_engine,
    execute_despite_drops,
    stream_despite_drops,
)
from dagster_postgres_connection.catalog.details import (
    BY_RELATION_AND_NAME,
    RelationDetails,
    read_relation_details,
)
from dagster_postgres_connection.catalog.fingerprint import read_fingerprint
from dagster_postgres_connection.catalog.lineage import view_lineage_in_background
from dagster_postgres_connection.catalog.models import (
    PostgresCatalogSnapshot,
    PostgresColumn,
    PostgresDatabase,
    PostgresForeignKey,
    PostgresRelation,
    PostgresRelationKind,
    PostgresSkippedObject,
    PostgresUniqueConstraint,
    RelationName,
)
from dagster_postgres_connection.catalog.query_history import (
    attach_query_history,
    query_history_in_background,
    read_query_history_rows,
)
from dagster_postgres_connection.catalog.routines import (
    build_routines,
    read_routine_rows,
    routine_analysis_in_background,
)
from dagster_postgres_connection.catalog.security import RelationSecurity, read_relation_security
from dagster_postgres_connection.catalog.selection import (
    select_database,
    select_relation,
    select_schema,
)
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.errors import (
    PostgresCatalogChangedError,
    PostgresCatalogReadError,
    PostgresConnectionError,
    PostgresDatabaseUnavailableError,
)

# The database we ask for the list of databases when none is configured.
_BOOTSTRAP_DATABASES = ("postgres", "template1")

# A relation dropped during the read makes it fail (see PostgresCatalogChangedError); a fresh
# snapshot a moment later no longer lists it.
_ATTEMPTS_WHILE_DDL_RUNS = 3


ProgressCallback = Callable[[str, str], None]  # (database, event) for CLI progress

# The order of relations in a snapshot (LIST_RELATIONS leaves it to us; see BY_RELATION_AND_NAME).
_BY_SCHEMA_AND_NAME = operator.attrgetter("schema", "name")


def selection_fingerprint(settings: PostgresConnectionSettings) -> str:
    """A stable hash of what decides the selection, stored in the snapshot."""
    payload = {
        "databases": list(settings.databases) if settings.databases else None,
        "filters": settings.filters.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@paused_gc()
def read_catalog(
    settings: PostgresConnectionSettings, *, on_progress: ProgressCallback | None = None
) -> PostgresCatalogSnapshot:
    """Reads every selected database and returns the snapshot.

    Raises:
        PostgresConnectionError: when nothing could be read at all (wrong password, unreachable
            host, no database selected). A single database failing is reported as skipped.
    """
    log = get_dagster_logger()
    started = time.perf_counter()
    skipped: list[PostgresSkippedObject] = []
    databases, statements = resolve_databases(settings, skipped)
    if not databases:
        reasons = "; ".join(f"`{s.label}`: {s.reason}" for s in skipped) or "none matched"
        raise PostgresConnectionError(
            f"No database of `{settings.location}` is selected for connection `{settings.name}` "
            f"({reasons}). Check `databases` and `filters.databases`."
        )

    # A server-level failure (password, host, port, TLS) ends the sync once, with one message,
    # instead of being repeated for every database still queued.
    server_failed = threading.Event()

    def read_one(database: str) -> tuple[PostgresDatabase | None, list[PostgresSkippedObject], int]:
        if server_failed.is_set():
            return None, [], 0
        if on_progress:
            on_progress(database, "start")
        try:
            result = _read_database(settings, database)
        except (PostgresDatabaseUnavailableError, PostgresCatalogReadError) as error:
            if on_progress:
                on_progress(database, "failed")
            return None, [PostgresSkippedObject(database=database, schema=None, name=None, reason=str(error))], 0
        except BaseException:
            server_failed.set()
            if on_progress:
                on_progress(database, "failed")
            raise
        if on_progress:
            on_progress(database, "done")
        return result

    workers = max(1, min(settings.max_concurrent_connections, len(databases)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dpc-read") as pool:
        results = list(pool.map(read_one, databases))

    read: list[PostgresDatabase] = []
    for database_result, database_skipped, database_statements in results:
        if database_result is not None:
            read.append(database_result)
        skipped.extend(database_skipped)
        statements += database_statements
    for item in skipped:
        log.warning(f"Skipping `{item.label}`: {item.reason}")
    history_problems = [d.query_history_problem for d in read if d.query_history_problem]
    if history_problems:
        log.warning(
            f"`query_history` is on for connection `{settings.name}`, but pg_stat_statements could not "
            f"be read; assets carry no query lineage or usage from it, nothing else changes. "
            + "; ".join(history_problems) + "."
        )
    if not read:
        raise PostgresConnectionError(
            f"Could not read any database of connection `{settings.name}`: "
            + "; ".join(f"`{s.label}`: {s.reason}" for s in skipped)
        )
    return PostgresCatalogSnapshot(
        connection_name=settings.name,
        host=settings.host,
        port=settings.port,
        captured_at=time.time(),
        databases=read,
        skipped=skipped,
        selection_fingerprint=selection_fingerprint(settings),
        statement_count=statements,
        read_seconds=round(time.perf_counter() - started, 3),
    )


def resolve_databases(
    settings: PostgresConnectionSettings, skipped: list[PostgresSkippedObject]
) -> tuple[list[str], int]:
    """The configured list, or every database the server lists, narrowed by the filters.

    Those without CONNECT go to `skipped`; returns the statements sent."""
    if settings.databases:
        candidates = [(name, True) for name in settings.databases]
        statements = 0
    else:
        candidates, statements = _list_server_databases(settings)
    selected = []
    for name, can_connect in candidates:
        if not select_database(settings.filters, name):
            continue
        if not can_connect:
            skipped.append(
                PostgresSkippedObject(
                    database=name, schema=None, name=None,
                    reason=f"role `{settings.username}` lacks CONNECT on database `{name}`",
                )
            )
            continue
        selected.append(name)
    return selected, statements


def _list_server_databases(settings: PostgresConnectionSettings) -> tuple[list[tuple[str, bool]], int]:
    last_error: PostgresConnectionError | None = None
    for bootstrap in _BOOTSTRAP_DATABASES:
        engine, counter = create_catalog_engine(settings, bootstrap)
        try:
            with catalog_transaction(engine, settings, bootstrap) as conn:
                rows = conn.execute(queries.LIST_DATABASES).all()
            return [(row.name, bool(row.can_connect)) for row in rows], counter.count
        except PostgresConnectionError as error:
            last_error = error
            if not isinstance(error, PostgresDatabaseUnavailableError):
                raise
        finally:
            engine.dispose()
    assert last_error is not None
    raise last_error


def _read_database(
    settings: PostgresConnectionSettings, database: str
) -> tuple[PostgresDatabase, list[PostgresSkippedObject], int]:
    engine, counter = create_catalog_engine(settings, database)
    try:
        for attempt in range(1, _ATTEMPTS_WHILE_DDL_RUNS + 1):
            try:
                with catalog_transaction(engine, settings, database) as conn:
                    result = _read_database_in_transaction(conn, settings, database)
                return (*result, counter.count)
            except PostgresCatalogChangedError:
                if attempt == _ATTEMPTS_WHILE_DDL_RUNS:
                    raise
        raise AssertionError("unreachable")
    finally:
        engine.dispose()


def _read_database_in_transaction(
    conn: Connection, settings: PostgresConnectionSettings, database: str
) -> tuple[PostgresDatabase, list[PostgresSkippedObject]]:
    skipped: list[PostgresSkippedObject] = []
    server_version = conn.execute(queries.SERVER_VERSION).scalar_one()

    rows_by_key: dict[RelationName, Any] = {}
    schemas_without_usage: set[str] = set()
    # Kept whole: partitions count towards their root even when filtered out.
    relation_rows = sorted(execute_despite_drops(conn, queries.LIST_RELATIONS), key=_BY_SCHEMA_AND_NAME)
    for row in relation_rows:
        if not select_schema(settings.filters, row.schema):
            continue
        kind = PostgresRelationKind.from_relkind(row.relkind)
        if not select_relation(settings.filters, database, row.schema, row.name, kind):
            continue
        readability = Readability.of(has_usage=row.has_usage, has_select=row.has_select)
        if readability is Readability.NO_SCHEMA_USAGE:
            schemas_without_usage.add(row.schema)
            continue
        if readability is Readability.NO_SELECT:
            skipped.append(
                PostgresSkippedObject(
                    database=database, schema=row.schema, name=row.name,
                    reason=f"role `{settings.username}` lacks SELECT on {kind.value.replace('_', ' ')} "
                    f"`{row.schema}.{row.name}`",
                )
            )
            continue
        rows_by_key[(row.schema, row.name)] = row
    _warn_about_locked(database, rows_by_key)
    for schema in sorted(schemas_without_usage):
        skipped.append(
            PostgresSkippedObject(
                database=database, schema=schema, name=None,
                reason=f"role `{settings.username}` lacks USAGE on schema `{schema}`",
            )
        )

    schemas = sorted({schema for schema, _ in rows_by_key})
    view_definitions = {key: row.view_definition for key, row in rows_by_key.items() if row.view_definition}
    # Python work runs on worker threads while the statements after it wait on the server
    # (psycopg2 releases the GIL meanwhile): views are parsed (lineage.py), and ~150k column
    # rows become records as they arrive and while the keys, indexes and constraints are read.
    # Routines: their bodies are parsed on a worker thread once the columns are built (routines.py).
    routine_rows = read_routine_rows(conn, settings.filters)
    # Opt-in: what pg_stat_statements recorded, parsed on another worker (query_history.py).
    history = read_query_history_rows(conn, database, settings.username) if settings.query_history else None
    relation_names = [(row.schema, row.name) for row in relation_rows]
    with (
        view_lineage_in_background(conn, schemas, view_definitions) as views,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpc-columns") as pool,
    ):
        builder = ColumnBuilder(pool)
        try:
            if schemas:
                stream_despite_drops(
                    conn, queries.LIST_COLUMNS, {"schemas": schemas},
                    batch_size=COLUMN_BATCH, consume=builder.add, restart=builder.restart,
                )
        finally:
            builder.close()
        with (
            routine_analysis_in_background(routine_rows, relation_names, builder.result) as routine_analyses,
            query_history_in_background(history, relation_names, builder.result) as history_analyses,
        ):
            keys = _read_keys(conn, schemas)
            details = read_relation_details(conn, relation_rows, rows_by_key, builder.result, views)
            security = read_relation_security(conn, schemas)
            columns = builder.result()
            analyses = routine_analyses.result()
            analyzed_statements = history_analyses.result() if history_analyses is not None else []
    # Last: it also tells whether a statement above left a locked relation's details out.
    fingerprint = read_fingerprint(conn)

    # Each relation's inputs are dropped as its record is built: at 50k tables the rows, columns
    # and key dicts would otherwise all still be in memory beside the finished records.
    del relation_rows
    relations = []
    for key in list(rows_by_key):
        row = rows_by_key.pop(key)
        relations.append(
            _build_relation(
                database, row, columns.pop(key, ()), keys.pop(key, RelationKeys()), key, details.pop(key),
                security=security.pop(key, None) or RelationSecurity(),
            )
        )
    relations, routines = build_routines(database, routine_rows, analyses, relations)
    relations = attach_query_history(relations, analyzed_statements)
    database_record = PostgresDatabase(
        name=database, server_version=server_version, relations=relations, catalog_fingerprint=fingerprint,
        routines=routines, query_history_problem=history.problem if history else None,
    )
    return database_record, skipped


def _warn_about_locked(database: str, rows_by_key: Mapping[RelationName, Any]) -> None:
    """Relations another session locks ACCESS EXCLUSIVE are synced without what would wait on the lock."""
    for (schema, name), row in rows_by_key.items():
        if row.locked_by_other_session:
            get_dagster_logger().warning(
                f"`{database}.{schema}.{name}` (or a relation it reads) is locked ACCESS EXCLUSIVE by "
                "another session (ALTER, VACUUM FULL, REFRESH ...): synced without its view definition, "
                "generation expressions, partition bounds, indexes and policy expressions, which the next "
                "sync fills in."
            )


@dataclass
class RelationKeys:
    """A relation's primary key, unique constraints and foreign keys, as records."""

    primary_key_name: str | None = None
    primary_key: list[str] = field(default_factory=list)
    unique_constraints: list[PostgresUniqueConstraint] = field(default_factory=list)
    foreign_keys: list[PostgresForeignKey] = field(default_factory=list)


def _read_keys(conn: Connection, schemas: Sequence[str]) -> dict[RelationName, RelationKeys]:
    """Every relation's keys: `LIST_KEYS` (primary, unique) and `LIST_FOREIGN_KEYS`, one
    statement each for all schemas. The statements leave the order to us: by relation, then name."""
    keys: dict[RelationName, RelationKeys] = defaultdict(RelationKeys)
    if not schemas:
        return keys
    for row in sorted(conn.execute(queries.LIST_KEYS, {"schemas": list(schemas)}), key=BY_RELATION_AND_NAME):
        relation = keys[(row.schema, row.relation)]
        if row.type == "p":
            relation.primary_key_name, relation.primary_key = row.name, interned(row.columns)
        else:
            relation.unique_constraints.append(PostgresUniqueConstraint(name=row.name, columns=interned(row.columns)))
    for row in sorted(conn.execute(queries.LIST_FOREIGN_KEYS, {"schemas": list(schemas)}), key=BY_RELATION_AND_NAME):
        keys[(row.schema, row.relation)].foreign_keys.append(
            PostgresForeignKey(
                name=row.name,
                columns=interned(row.columns),
                referred_schema=intern(row.referred_schema),
                referred_table=intern(row.referred_table),
                referred_columns=interned(row.referred_columns),
            )
        )
    return keys


def _build_relation(
    database: str,
    row: Any,
    columns: Sequence[PostgresColumn],
    keys: RelationKeys,
    key: RelationName,
    details: RelationDetails,
    *,
    security: RelationSecurity,
) -> PostgresRelation:
    """The record, from its `LIST_RELATIONS` row, columns, keys and details."""
    schema, name = key
    placement = details.placement
    is_root = placement.partitioning is not None
    return PostgresRelation(
        database=database,
        schema=intern(schema),
        name=intern(name),  # the same names recur across schemas, and in other relations' keys
        kind=PostgresRelationKind.from_relkind(row.relkind),
        columns=list(columns),
        owner=interned_or_none(row.owner),
        comment=row.comment,
        # A partitioned root has no storage of its own: its leaves' sums stand for it.
        row_estimate=placement.summed_row_estimate if is_root else row.row_estimate,
        size_bytes=placement.summed_size_bytes if is_root else row.size_bytes,
        size_is_estimate=is_root or row.size_bytes is not None,
        primary_key_name=keys.primary_key_name,
        primary_key=keys.primary_key,
        foreign_keys=keys.foreign_keys,
        unique_constraints=keys.unique_constraints,
        view_definition=row.view_definition,
        deps=details.deps,
        column_lineage=details.column_lineage,
        indexes=details.indexes,
        check_constraints=details.check_constraints,
        exclusion_constraints=details.exclusion_constraints,
        partitioning=placement.partitioning,
        partition_of=placement.partition_of,
        partition_bound=placement.partition_bound,
        inherits_from=placement.inherits_from,
        foreign_table=details.foreign_table,
        select_grantees=security.select_grantees,
        column_select_grants=security.column_select_grants,
        row_security=security.row_security,
        force_row_security=security.force_row_security,
        policies=security.policies,
    )

