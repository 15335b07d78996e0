"""Opt-in column profiles: null fraction, distinct count, min/max and mean per column.

Only the profile job (`<connection>_profile`) runs this; the sync never does. Per database one
statement reads the column types (and `pg_stats` when `distinct_count: pg_stats`); per relation
one statement profiles every column at once, over `TABLESAMPLE SYSTEM (sample_percent)` when
the planner expects more than `row_limit` rows, and never over more than `row_limit` rows. Each
runs in its own transaction under `profiling.statement_timeout_seconds` and the connection's
`lock_timeout`; a relation that times out is skipped with a warning.
"""

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    DagsterInstance,
    Definitions,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    TableColumn,
    TableRecord,
    TableSchema,
    get_dagster_logger,
    job,
    op,
)
from sqlalchemy import Connection, column, func, literal_column, select, table, tablesample, text
from sqlalchemy.exc import DBAPIError

from dagster_postgres_connection.catalog.connection import create_catalog_engine
from dagster_postgres_connection.catalog.models import PostgresRelation, RelationKey
from dagster_postgres_connection.catalog.selection import select_for_profiling
from dagster_postgres_connection.observe.config import PostgresProfilingSettings
from dagster_postgres_connection.observe.failures import reported_as_failure
from dagster_postgres_connection.observe.sync import PostgresSyncTarget, selected_relations

PROFILE_METADATA_KEY = "dagster-postgres-connection/profile"

# Base types (after domains) with a natural order and min/max aggregates, and those with a mean.
_ORDERED_TYPES = frozenset(
    {"int2", "int4", "int8", "numeric", "float4", "float8", "money", "text", "varchar", "bpchar",
     "name", "date", "time", "timetz", "timestamp", "timestamptz", "interval"}
)
_NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8"})
# Types without an equality operator: `count(DISTINCT ...)` fails on them (also as array elements).
_NO_EQUALITY_TYPES = frozenset({"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"})

# Columns of the profiled relations with their base type; `pg_stats` for the planner's view.
_PROFILE_COLUMNS = text(
    """
    SELECT
        n.nspname AS schema,
        c.relname AS relation,
        a.attname AS name,
        format_type(a.atttypid, a.atttypmod) AS type,
        base.typname AS base_type,
        base.typtype = 'e' AS is_enum,
        element.typname AS element_type,
        s.null_frac,
        s.n_distinct,
        c.reltuples
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_type base ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    LEFT JOIN pg_type element ON element.oid = base.typelem AND base.typcategory = 'A'
    LEFT JOIN pg_stats s
        ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
       AND s.inherited = (c.relkind = 'p')
    WHERE a.attnum > 0 AND NOT a.attisdropped
      AND (n.nspname, c.relname) IN (SELECT * FROM unnest(CAST(:schemas AS text[]), CAST(:names AS text[])))
    ORDER BY n.nspname, c.relname, a.attnum
    """
)


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    ordered: bool
    numeric: bool
    distinct: bool
    pg_stats_distinct: float | None


@dataclass(frozen=True)
class ColumnProfile:
    """What the profile says about one column; `None` where it does not apply."""

    name: str
    type: str
    null_fraction: float | None
    distinct_count: int | None
    min: str | None
    max: str | None
    mean: float | None


@dataclass(frozen=True)
class RelationProfile:
    rows_profiled: int
    sampled: bool
    columns: Sequence[ColumnProfile]

    def to_metadata(self, settings: PostgresProfilingSettings) -> dict[str, MetadataValue]:
        schema = TableSchema(
            columns=[
                TableColumn("column", "string"),
                TableColumn("type", "string"),
                TableColumn("null_fraction", "float"),
                TableColumn("distinct_count", "int"),
                TableColumn("min", "string"),
                TableColumn("max", "string"),
                TableColumn("mean", "float"),
            ]
        )
        records = [
            TableRecord(
                {
                    "column": c.name, "type": c.type, "null_fraction": c.null_fraction,
                    "distinct_count": c.distinct_count, "min": c.min, "max": c.max, "mean": c.mean,
                }
            )
            for c in self.columns
        ]
        return {
            PROFILE_METADATA_KEY: MetadataValue.table(records=records, schema=schema),
            "dagster-postgres-connection/profile_rows": MetadataValue.int(self.rows_profiled),
            "dagster-postgres-connection/profile_sampled": MetadataValue.bool(self.sampled),
            "dagster-postgres-connection/profile_sample_percent": MetadataValue.float(
                settings.sample_percent if self.sampled else 100.0
            ),
            "dagster-postgres-connection/profile_distinct_count": MetadataValue.text(settings.distinct_count),
        }


def profile_relations(
    target: PostgresSyncTarget, settings: PostgresProfilingSettings, instance: DagsterInstance | None = None
) -> Iterator[tuple[AssetKey, RelationProfile]]:
    """Profiles of every asset relation `profiling.relations` selects (the last snapshot's
    relations: `instance` holds it under VERSIONED_STATE_STORAGE)."""
    log = get_dagster_logger()
    relations = selected_relations(target.previous_snapshot(instance), target.settings)
    chosen: dict[str, list[PostgresRelation]] = defaultdict(list)
    for key, relation in relations.items():
        if key in target.asset_keys and select_for_profiling(settings.relations, *key):
            chosen[relation.database].append(relation)
    for database, database_relations in sorted(chosen.items()):
        engine, _ = create_catalog_engine(target.settings, database)
        try:
            with engine.connect() as conn:
                with conn.begin():
                    columns = _read_columns(conn, database_relations)
                for relation in database_relations:
                    key = (database, relation.schema, relation.name)
                    relation_columns = columns.get(key, [])
                    try:
                        with conn.begin():
                            conn.execute(
                                text("SELECT set_config('statement_timeout', :ms, true)"),
                                {"ms": str(settings.statement_timeout_seconds * 1000)},
                            )
                            profile = _profile(conn, relation, relation_columns, settings)
                    except DBAPIError as error:
                        reason = " ".join(str(error.orig).split()) if error.orig else type(error).__name__
                        log.warning(f"Skipping the profile of `{'.'.join(key)}`: {reason}")
                        continue
                    yield target.asset_keys[key], profile
        finally:
            engine.dispose()


def _read_columns(conn: Connection, relations: Sequence[PostgresRelation]) -> Mapping[RelationKey, list[_Column]]:
    rows = conn.execute(
        _PROFILE_COLUMNS,
        {"schemas": [r.schema for r in relations], "names": [r.name for r in relations]},
    ).all()
    database = relations[0].database
    columns: dict[RelationKey, list[_Column]] = defaultdict(list)
    for row in rows:
        n_distinct = row.n_distinct
        if n_distinct is not None and n_distinct < 0:  # a fraction of the rows
            n_distinct = -n_distinct * max(row.reltuples or 0, 0)
        columns[(database, row.schema, row.relation)].append(
            _Column(
                name=row.name,
                type=row.type,
                ordered=row.base_type in _ORDERED_TYPES or bool(row.is_enum),
                numeric=row.base_type in _NUMERIC_TYPES,
                distinct=row.base_type not in _NO_EQUALITY_TYPES and row.element_type not in _NO_EQUALITY_TYPES,
                pg_stats_distinct=n_distinct,
            )
        )
    return columns


def _profile(
    conn: Connection, relation: PostgresRelation, columns: Sequence[_Column], settings: PostgresProfilingSettings
) -> RelationProfile:
    source = table(relation.name, *(column(c.name) for c in columns), schema=relation.schema)
    # SYSTEM sampling picks whole pages: on a small table it may return nothing, so small
    # tables (by the planner's estimate) are read whole, up to `row_limit`.
    sampled = (
        relation.kind.is_measured
        and relation.row_estimate is not None
        and relation.row_estimate > settings.row_limit
    )
    sample_source = tablesample(source, func.system(settings.sample_percent)) if sampled else source
    rows = select(*(sample_source.c[c.name] for c in columns)).select_from(sample_source).limit(settings.row_limit)
    sample = rows.subquery("profiled")
    aggregates: list[Any] = [func.count().label("rows")]
    for index, c in enumerate(columns):
        value = sample.c[c.name]
        aggregates.append(func.count(value).label(f"non_null_{index}"))
        if c.distinct and settings.distinct_count == "sample":
            aggregates.append(func.count(value.distinct()).label(f"distinct_{index}"))
        if c.ordered:
            aggregates.append(func.min(value).label(f"min_{index}"))
            aggregates.append(func.max(value).label(f"max_{index}"))
        if c.numeric:
            aggregates.append(func.avg(value).label(f"mean_{index}"))
    if not columns:
        aggregates.append(literal_column("0").label("no_columns"))
    result = conn.execute(select(*aggregates).select_from(sample)).one()._mapping
    total = int(result["rows"])
    profiles = []
    for index, c in enumerate(columns):
        distinct = result.get(f"distinct_{index}")
        if settings.distinct_count == "pg_stats":
            distinct = round(c.pg_stats_distinct) if c.pg_stats_distinct is not None else None
        minimum, maximum, mean = (result.get(f"{part}_{index}") for part in ("min", "max", "mean"))
        profiles.append(
            ColumnProfile(
                name=c.name,
                type=c.type,
                null_fraction=round(1 - result[f"non_null_{index}"] / total, 6) if total else None,
                distinct_count=int(distinct) if distinct is not None else None,
                min=str(minimum) if minimum is not None else None,
                max=str(maximum) if maximum is not None else None,
                mean=float(mean) if mean is not None else None,
            )
        )
    return RelationProfile(rows_profiled=total, sampled=sampled, columns=profiles)


def build_profile_definitions(target: PostgresSyncTarget, settings: PostgresProfilingSettings) -> Definitions:
    """The `<connection>_profile` job (and its schedule with `profile_schedule`)."""
    name = f"{target.settings.name}_profile"

    @op(
        name=f"{name}_op",  # op names must differ from job names in a code location
        out={},
        description=f"Profiles the relations of connection `{target.settings.name}` selected by `profiling.relations`.",
        tags={"dagster/kind/postgres": ""},
    )
    def _profile_op(context: OpExecutionContext) -> Iterator[AssetObservation]:
        count = 0
        with reported_as_failure():
            for asset_key, profile in profile_relations(target, settings, context.instance):
                count += 1
                yield AssetObservation(asset_key=asset_key, metadata=profile.to_metadata(settings))
        context.log.info(f"Profiled {count} relations.")

    @job(name=name, description=_profile_op.description, tags={"dagster/kind/postgres": ""})
    def _job() -> None:
        _profile_op()

    schedules = (
        [ScheduleDefinition(name=f"{name}_schedule", job=_job, cron_schedule=settings.profile_schedule, execution_timezone=target.sync.timezone)]
        if settings.profile_schedule
        else []
    )
    return Definitions(jobs=[_job], schedules=schedules)

