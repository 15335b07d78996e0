"""Change detection from Postgres' own statistics, then exact numbers for what changed.

Per database: one statement reads the counters of every selected table (`pg_stat_user_tables`
inserts/updates/deletes, the relfilenodes, `pg_class.reltuples`); that statement takes no lock.
Only relations whose counters moved (or that have no baseline yet) are then opened, each alone
in its own short transaction under the session's `statement_timeout` and `lock_timeout`: exact
size (`pg_total_relation_size`) and, when the planner estimates fewer rows than the threshold,
`count(*)`. A relation another session holds locked is skipped with a warning after
`lock_timeout` and keeps its previous statistics, so the next sync tries again.
"""

import time
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import get_dagster_logger
from dagster_shared.record import copy
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from dagster_postgres_connection.catalog.connection import (
    catalog_transaction,
    create_catalog_engine,
    describe_connection_error,
)
from dagster_postgres_connection.catalog.models import (
    PostgresRelation,
    RelationKey,
)
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.errors import PostgresUnreachableError
from dagster_postgres_connection.observe import queries
from dagster_postgres_connection.observe.health import PostgresTableHealth, table_health
from dagster_postgres_connection.observe.state import PostgresRelationStatistics

# SQLSTATEs of the timeouts we turn into "skipped" instead of failing the sync.
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"
_UNDEFINED_TABLE = "42P01"  # dropped between the statistics statement and the count
# Relations measured per statement pair: few round trips, and a lock costs one retry of 100.
_BATCH_SIZE = 100

@dataclass(frozen=True)
class StatisticsResult:
    """The statistics of one sync, and which relations changed since the previous one."""

    statistics: Mapping[RelationKey, PostgresRelationStatistics]
    changed: frozenset[RelationKey]
    skipped: Mapping[RelationKey, str]  # relation -> why its exact numbers could not be read
    statement_count: int
    # The data version of every relation with storage in the schemas read, selected or not
    # (a selected view's version follows them; `versions.with_view_versions`).
    versions: Mapping[RelationKey, str] = field(default_factory=dict)
    # Databases read on a streaming standby (`pg_is_in_recovery()`): versions follow its replay.
    standby_databases: frozenset[str] = frozenset()


def read_statistics(
    settings: PostgresConnectionSettings,
    relations: Sequence[PostgresRelation],
    previous: Mapping[RelationKey, PostgresRelationStatistics],
    *,
    exact_row_count_threshold: int,
    created: Collection[RelationKey] = (),
    now: float | None = None,
    schemas_by_database: Mapping[str, Sequence[str]] | None = None,
) -> StatisticsResult:
    """Statistics of the tables, partitioned tables and materialized views among `relations`.

    A relation with no previous statistics gets a baseline: measured, but not "changed".
    After a statistics reset (`pg_stat_reset`) with the same relfilenodes, the data may or may
    not have changed: it is measured again and not claimed as changed either.

    Args:
        previous: The last sync's statistics by relation; empty on the first sync.
        exact_row_count_threshold: Count rows exactly below this planner estimate.
        created: Relations created since the previous sync: their first measure is a change.
        schemas_by_database: The schemas to read (`versions.ChangeWatch`: those of the selected
            relations and of what the selected views read); default: those of `relations`.
    """
    now = time.time() if now is None else now
    selected_by_database: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for relation in relations:
        if relation.kind.is_measured:
            selected_by_database[relation.database].add((relation.schema, relation.name))
    schemas = (
        schemas_by_database
        if schemas_by_database is not None
        else {database: sorted({schema for schema, _ in names}) for database, names in selected_by_database.items()}
    )
    result = StatisticsResult(statistics={}, changed=frozenset(), skipped={}, statement_count=0)
    for database in sorted(schemas):
        one = _read_database(
            settings, database, selected_by_database.get(database, set()), schemas[database], previous,
            threshold=exact_row_count_threshold, created=created, now=now,
        )
        result = StatisticsResult(
            statistics={**result.statistics, **one.statistics},
            changed=result.changed | one.changed,
            skipped={**result.skipped, **one.skipped},
            statement_count=result.statement_count + one.statement_count,
            versions={**result.versions, **one.versions},
            standby_databases=result.standby_databases | one.standby_databases,
        )
    return result


def read_data_versions(
    settings: PostgresConnectionSettings, database: str, schemas: Sequence[str]
) -> tuple[dict[RelationKey, str], bool, int]:
    """The data version of every relation with storage in `schemas` of `database`, whether the
    server is a standby, and the statements sent: one `RELATION_VERSIONS`, lock-free, in a
    read-only session (`default_transaction_read_only`), as its own transaction."""
    engine, counter = create_catalog_engine(settings, database)
    try:
        with _connect(engine, settings, database) as conn:
            rows = (
                conn.execution_options(isolation_level="AUTOCOMMIT")
                .execute(queries.RELATION_VERSIONS, {"schemas": list(schemas)})
                .all()
            )
    finally:
        engine.dispose()
    versions = {(database, row.schema, row.name): row.data_version for row in rows}
    return versions, any(row.in_recovery for row in rows), counter.count


def _read_database(
    settings: PostgresConnectionSettings,
    database: str,
    selected: set[tuple[str, str]],
    schemas: Sequence[str],
    previous: Mapping[RelationKey, PostgresRelationStatistics],
    *,
    threshold: int,
    created: Collection[RelationKey],
    now: float,
) -> StatisticsResult:
    """One statistics statement, then one short transaction per relation that moved."""
    statistics: dict[RelationKey, PostgresRelationStatistics] = {}
    changed: set[RelationKey] = set()
    skipped: dict[RelationKey, str] = {}
    engine, counter = create_catalog_engine(settings, database)
    try:
        with catalog_transaction(engine, settings, database) as conn:
            rows = conn.execute(queries.RELATION_STATISTICS, {"schemas": list(schemas)}).all()
        versions = {(database, row.schema, row.name): row.data_version for row in rows}
        standby = frozenset({database}) if any(row.in_recovery for row in rows) else frozenset()
        to_measure = []
        for row in rows:
            key = (database, row.schema, row.name)
            before = previous.get(key)
            if (row.schema, row.name) not in selected:
                continue
            if before is not None and not _moved(before, row):
                statistics[key] = _with_health(before, row, counted=False)
            else:
                to_measure.append(row)
        if not to_measure:
            return StatisticsResult(
                statistics=statistics, changed=frozenset(), skipped={}, statement_count=counter.count,
                versions=versions, standby_databases=standby,
            )
        with _connect(engine, settings, database) as conn:
            for row, measured in _measure_all(conn, to_measure, threshold):
                key = (database, row.schema, row.name)
                before = previous.get(key)
                if isinstance(measured, _Skipped):
                    skipped[key] = measured.reason
                    get_dagster_logger().warning(f"Skipping `{'.'.join(key)}` this sync: {measured.reason}")
                    if before is not None:
                        statistics[key] = _with_health(before, row, counted=False)
                    continue
                is_change = key in created if before is None else not _only_reset(before, row)
                if is_change:
                    changed.add(key)
                statistics[key] = PostgresRelationStatistics(
                    database=database,
                    schema=row.schema,
                    name=row.name,
                    oid=row.oid,
                    changes=row.changes,
                    storage=row.storage,
                    stats_reset=_timestamp(row.stats_reset),
                    row_count=measured.row_count,
                    row_count_is_exact=measured.exact,
                    size_bytes=measured.size_bytes,
                    last_changed_at=now if is_change else (before.last_changed_at if before else None),
                    observed_at=now,
                    health=_health(before, row, counted=measured.exact),
                )
        return StatisticsResult(
            statistics=statistics,
            changed=frozenset(changed),
            skipped=skipped,
            statement_count=counter.count,
            versions=versions,
            standby_databases=standby,
        )
    finally:
        engine.dispose()


@dataclass(frozen=True)
class _Measured:
    size_bytes: int | None  # None when the relation was dropped meanwhile
    row_count: int | None
    exact: bool


class _Skipped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _measure_all(
    conn: Connection, rows: Sequence[Any], threshold: int
) -> Iterator[tuple[Any, "_Measured | _Skipped"]]:
    """Measures in batches of `_BATCH_SIZE` relations, two statements per batch. When a batch
    meets a lock or a timeout, its relations are measured one by one, so only the culprit is
    skipped."""
    for start in range(0, len(rows), _BATCH_SIZE):
        batch = rows[start : start + _BATCH_SIZE]
        try:
            yield from zip(batch, _measure(conn, batch, threshold), strict=True)
            continue
        except _Skipped as skip:
            if len(batch) == 1:
                yield batch[0], skip
                continue
        for row in batch:
            try:
                yield row, _measure(conn, [row], threshold)[0]
            except _Skipped as skip:
                yield row, skip


def _measure(conn: Connection, rows: Sequence[Any], threshold: int) -> list[_Measured]:
    """Exact sizes, and exact counts below the threshold, in one short transaction."""
    exact = [_count_exactly(row, threshold) for row in rows]
    counted = [row for row, is_exact in zip(rows, exact, strict=True) if is_exact]
    try:
        with conn.begin():
            sizes: dict[int, int] = {
                r.oid: r.size for r in conn.execute(queries.TOTAL_SIZES, {"oids": [row.oid for row in rows]})
            }
            counts: dict[int, int] = (
                {r.position: r.row_count for r in conn.execute(queries.row_counts([(r.schema, r.name) for r in counted]))}
                if counted
                else {}
            )
    except DBAPIError as error:
        code = getattr(error.orig, "pgcode", None)
        if code == _LOCK_NOT_AVAILABLE:
            raise _Skipped(
                "another session holds a lock on it (`lock_timeout_seconds` reached); its previous "
                "statistics are kept and it is read again at the next sync"
            ) from None
        if code == _UNDEFINED_TABLE:
            raise _Skipped("it was dropped or renamed while the sync ran; the next sync sees it as gone") from None
        if code == _QUERY_CANCELED:
            raise _Skipped(
                "measuring it exceeded `statement_timeout_seconds`; raise that or lower "
                "`exact_row_count_threshold`"
            ) from None
        raise
    count_by_oid = {row.oid: counts[position] for position, row in enumerate(counted)}
    return [
        _Measured(
            size_bytes=sizes.get(row.oid),
            row_count=count_by_oid[row.oid] if is_exact else _estimate(row),
            exact=is_exact,
        )
        for row, is_exact in zip(rows, exact, strict=True)
    ]


def _estimate(row: Any) -> int | None:
    return row.row_estimate if row.row_estimate is not None else row.live_tuples


def _count_exactly(row: Any, threshold: int) -> bool:
    estimate = _estimate(row)
    return bool(row.populated) and estimate is not None and estimate < threshold


def _moved(before: PostgresRelationStatistics, row: Any) -> bool:
    return (
        before.oid != row.oid
        or before.storage != row.storage
        or before.changes != row.changes
        or before.stats_reset != _timestamp(row.stats_reset)
    )


def _only_reset(before: PostgresRelationStatistics, row: Any) -> bool:
    """The statistics were reset but the files are the same: the data may not have changed."""
    return (
        before.stats_reset != _timestamp(row.stats_reset)
        and before.oid == row.oid
        and before.storage == row.storage
    )


def _health(before: PostgresRelationStatistics | None, row: Any, *, counted: bool) -> PostgresTableHealth:
    """The relation's health in `row`; the previous sync's own scans still count if the
    statistics are the same ones (same relation, no reset)."""
    same = before is not None and before.oid == row.oid and before.stats_reset == _timestamp(row.stats_reset)
    return table_health(row, before.health if before else None, same_statistics=same, counted=counted)


def _with_health(before: PostgresRelationStatistics, row: Any, *, counted: bool) -> PostgresRelationStatistics:
    """The previous statistics, with the health read now (it moves without the data moving)."""
    health = _health(before, row, counted=counted)
    return before if health == before.health else copy(before, health=health)


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def _connect(engine: Engine, settings: PostgresConnectionSettings, database: str) -> Connection:
    try:
        return engine.connect()
    except (OperationalError, DBAPIError) as error:
        raise PostgresUnreachableError(describe_connection_error(error, settings, database)) from None
