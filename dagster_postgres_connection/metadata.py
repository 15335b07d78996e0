"""A relation as Dagster metadata: the one module from a `PostgresRelation` to its asset's keys.

Standard Dagster keys carry what Dagster understands (`dagster/column_schema`,
`dagster/column_lineage`, `dagster/table_name`, `dagster/uri`); the rest lives under the
`dagster-postgres-connection/` namespace (`PostgresMetadataSet`). `dagster/row_count` is left
to observations: it means a counted number of rows, while `reltuples` is only the planner's
estimate.

Column types keep Postgres's own spelling (`format_type`); what the type alone does not say
(enum labels, a domain's base type, identity and generated columns) goes into the column's
constraint notes, next to keys and defaults. Table-level notes list check and exclusion
constraints; indexes, partitions, inheritance and foreign-table details get keys of their own.
"""

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from dagster import (
    MarkdownMetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableColumnLineage,
    TableConstraints,
    TableSchema,
)
from dagster._core.definitions.metadata import NamespacedMetadataSet

from dagster_postgres_connection.catalog.models import (
    PostgresColumn,
    PostgresDatabase,
    PostgresForeignKey,
    PostgresIndex,
    PostgresPartitioning,
    PostgresPolicy,
    PostgresRelation,
    PostgresRelationRef,
    PostgresRoutine,
)
from dagster_postgres_connection.catalog.selection import select_schema
from dagster_postgres_connection.config import PostgresFilters


def relation_metadata(
    relation: PostgresRelation, *, uri: str, column_lineage: TableColumnLineage | None
) -> dict[str, Any]:
    """Every metadata key of the relation's asset (None values left out).

    TableMetadataSet's keys and ours, as plain dicts: the metadata set classes validate each
    instance, a second per 10k assets at load (see `postgres_metadata`).
    """
    metadata = {
        "dagster/column_schema": build_column_schema(relation),
        "dagster/column_lineage": column_lineage,
        "dagster/table_name": relation.qualified_name,
        "dagster/uri": uri,
        **postgres_metadata(
            relation_kind=relation.kind.value,
            owner=relation.owner,
            row_estimate=relation.row_estimate,
            size_bytes=relation.size_bytes,
            primary_key=", ".join(relation.primary_key) or None,
            view_definition=relation.view_definition,
            indexes=describe_indexes(relation.indexes),
            index_definitions=index_definitions(relation.indexes),
            **structure_metadata(relation),
            **access_metadata(relation),
            **routine_metadata(relation),
            **query_history_metadata(relation),
        ),
    }
    return {key: value for key, value in metadata.items() if value is not None}


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
    indexes: str | None = None  # one line per index: name, method, columns (DESC), INCLUDE, WHERE, unique / primary key
    index_definitions: str | None = None  # one `CREATE INDEX` per line, as pg_get_indexdef prints it
    partition_strategy: str | None = None  # range, list or hash (partitioned tables)
    partition_key: str | None = None
    partition_count: int | None = None  # leaf partitions, all levels
    partition_bounds: str | None = None  # one line per partition, summarised beyond 20
    partition_of: str | None = None  # `schema.table` (partitions, when exposed as assets)
    partition_bound: str | None = None
    inherits_from: str | None = None  # legacy INHERITS parents, `schema.table, ...`
    foreign_server: str | None = None
    foreign_data_wrapper: str | None = None
    foreign_server_options: str | None = None  # `host=..., dbname=...`; user mappings are never read
    foreign_table_options: str | None = None
    select_grantees: str | None = None  # roles granted SELECT directly, `PUBLIC` first: `PUBLIC, analyst, app (columns id, name)`
    row_security: str | None = None  # `enabled`, or `enabled, forced` (applies to the owner too); absent when off
    policies: str | None = None  # one line per row-level security policy, as `CREATE POLICY` reads
    written_by: str | None = None  # one line per routine (and trigger) writing it: how, from what
    read_by: str | None = None  # signatures of the routines that read it, one per line
    query_calls: int | None = None  # pg_stat_statements: executions of statements naming it
    query_rows: int | None = None  # rows those statements returned or affected
    written_by_queries: str | None = None  # executed statements that wrote it from other relations

    @classmethod
    def namespace(cls) -> str:
        """The key prefix: `dagster-postgres-connection/<field>`."""
        return "dagster-postgres-connection"


_POSTGRES_METADATA_KEYS = {field: f"{PostgresMetadataSet.namespace()}/{field}" for field in PostgresMetadataSet.model_fields}


def postgres_metadata(**fields: object) -> dict[str, object]:
    """`dict(PostgresMetadataSet(**fields))` without its None values, minus its cost.

    The metadata set validates every instance with pydantic: ~100 µs an asset, a second per
    10k assets at code location load. Same keys; an unknown field is a `KeyError`.
    """
    return {_POSTGRES_METADATA_KEYS[name]: value for name, value in fields.items() if value is not None}


def build_column_schema(relation: PostgresRelation) -> TableSchema:
    """Every column with its Postgres type, nullability, keys and comment."""
    primary_key = set(relation.primary_key)
    single_column_unique = {uc.columns[0] for uc in relation.unique_constraints if len(uc.columns) == 1}
    if len(primary_key) == 1:
        single_column_unique |= primary_key
    single_column_unique |= unique_index_columns(relation)
    references: dict[str, list[str]] = {}
    for fk in relation.foreign_keys:
        note = foreign_key_note(fk)
        for column in dict.fromkeys(fk.columns):
            references.setdefault(column, []).append(note)
    columns = []
    for column in relation.columns:
        other = []
        if column.name in primary_key:
            other.append("primary key")
        other.extend(references.get(column.name, ()))
        if column.default is not None:
            other.append(f"default {column.default}")
        other.extend(column_notes(column))
        unique = column.name in single_column_unique
        columns.append(_table_column(column.name, column.type, column.comment, column.nullable, unique, tuple(other)))
    return TableSchema(columns=columns, constraints=TableConstraints(other=_table_constraints(relation)))


@lru_cache(maxsize=65536)
def _table_column(
    name: str, type: str, comment: str | None, nullable: bool, unique: bool, other: tuple[str, ...]
) -> TableColumn:
    """Shared instances: columns such as `id bigint NOT NULL` recur across a catalog's tables
    (154,562 columns, 8,703 distinct at 10k generated tables), and each `TableColumn` validates
    its arguments when built."""
    return TableColumn(
        name=name, type=type, description=comment, constraints=_column_constraints(nullable, unique, other)
    )


@lru_cache(maxsize=4096)
def _column_constraints(nullable: bool, unique: bool, other: tuple[str, ...]) -> TableColumnConstraints:
    """Shared instances: most columns of a catalog have one of a few constraint sets."""
    return TableColumnConstraints(nullable=nullable, unique=unique, other=list(other))


_SIMPLE_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")


def unique_index_columns(relation: PostgresRelation) -> set[str]:
    """Columns a unique index over that column alone makes unique (`CREATE UNIQUE INDEX` without
    a constraint). Not a partial index's: it is unique only among the rows of its predicate; not
    an expression's (`lower(email)`)."""
    # Index columns are spelled as pg_get_indexdef prints them (quote_ident): a plain column is
    # its name, bare when it is a simple identifier, else double-quoted; anything else is an
    # expression. (A bare simple name that quote_ident would still quote, a keyword, is quoted
    # in the index too, so it matches the quoted spelling.)
    spellings: dict[str, str] = {}
    for column in relation.columns:
        spellings['"' + column.name.replace('"', '""') + '"'] = column.name
        if _SIMPLE_IDENTIFIER.fullmatch(column.name):
            spellings[column.name] = column.name
    return {
        spellings[index.columns[0]]
        for index in relation.indexes
        if index.unique and not index.partial and len(index.columns) == 1 and index.columns[0] in spellings
    }


def foreign_key_note(fk: PostgresForeignKey) -> str:
    """A column's note for a foreign key it is part of: `foreign key -> public.language(language_id)`;
    a composite key is one key, noted whole on each of its columns:
    `foreign key (order_no, region) -> sales.order(no, region)`."""
    referred = f"{fk.referred_schema}.{fk.referred_table}({_quote_list(fk.referred_columns)})"
    if len(fk.columns) == 1:
        return f"foreign key -> {referred}"
    return f"foreign key ({_quote_list(fk.columns)}) -> {referred}"


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
    constraints.extend(table_constraint_notes(relation))
    return constraints


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
    """One line per index: `film_pkey: btree (film_id), primary key`, with what changes its
    meaning: `(at DESC)`, `INCLUDE (n)`, `WHERE (n > 0)`, `unique (partial)`."""
    lines = []
    for index in indexes:
        keys = [
            f"{column} {ordering}" if ordering else column
            for column, ordering in zip(index.columns, index.orderings or [""] * len(index.columns), strict=True)
        ]
        line = f"{index.name}: {index.method} ({', '.join(keys)})"
        if index.include_columns:
            line += f" INCLUDE ({', '.join(index.include_columns)})"
        if index.predicate is not None:
            line += f" WHERE {index.predicate}"
        # A partial unique index is unique only among the rows of its predicate.
        flags = (
            ["primary key"] if index.primary
            else ["unique (partial)" if index.partial else "unique"] if index.unique
            else []
        )
        if index.nulls_not_distinct:
            flags.append("nulls not distinct")
        lines.append(", ".join([line, *flags]))
    return "\n".join(lines) or None


def index_definitions(indexes: Sequence[PostgresIndex]) -> str | None:
    """Each index's `CREATE INDEX` statement as `pg_get_indexdef` prints it (operator classes,
    collations, storage parameters included), one per line."""
    return "\n".join(index.definition for index in indexes) or None


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
        fields |= {"foreign_server": foreign.server, "foreign_data_wrapper": foreign.wrapper}
        # Options as `name=value, ...`; user mappings (which may hold passwords) are never read.
        for owner, options in (("server", foreign.server_options), ("table", foreign.table_options)):
            fields[f"foreign_{owner}_options"] = describe_options(options)
    return fields


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def summarize_bounds(partitioning: PostgresPartitioning, limit: int = 20) -> str:
    """One line per partition (indented by level); beyond `limit`, the first and last halves."""
    lines = [f"{'  ' * (p.level - 1)}{p.name}: {p.bound}" for p in partitioning.partitions]
    if len(lines) <= limit:
        return "\n".join(lines)
    half = limit // 2
    return "\n".join([*lines[:half], f"... {len(lines) - 2 * half} more ...", *lines[-half:]])



def access_metadata(relation: PostgresRelation) -> dict[str, Any]:
    """Fields of `PostgresMetadataSet` on who may read the relation: SELECT grantees,
    row-level security and its policies."""
    grantees = [*relation.select_grantees]
    grantees += [f"{role} (columns {', '.join(columns)})" for role, columns in relation.column_select_grants.items()]
    fields: dict[str, Any] = {"select_grantees": ", ".join(grantees) or None}
    if relation.row_security:
        fields["row_security"] = "enabled, forced" if relation.force_row_security else "enabled"
    fields["policies"] = "\n".join(describe_policy(policy) for policy in relation.policies) or None
    return fields


def describe_policy(policy: PostgresPolicy) -> str:
    """`own_rows: PERMISSIVE FOR SELECT TO analyst, app USING (owner = CURRENT_USER)`, in the
    words of `CREATE POLICY`."""
    line = (
        f"{policy.name}: {'PERMISSIVE' if policy.permissive else 'RESTRICTIVE'} FOR {policy.command} "
        f"TO {', '.join(policy.roles)}"
    )
    if policy.using is not None:
        line += f" USING {policy.using}"
    if policy.with_check is not None:
        line += f" WITH CHECK {policy.with_check}"
    return line


def routine_metadata(relation: PostgresRelation) -> dict[str, Any]:
    """`written_by` and `read_by` of `PostgresMetadataSet`: the routines that write and read it.

    e.g. `etl.stage_orders(p_day date) (procedure): DELETE, INSERT from etl.raw_orders`, and for
    a trigger function `... via trigger raw_orders_audit on etl.raw_orders (AFTER INSERT, ROW): ...`.
    """
    fields: dict[str, Any] = {}
    if relation.written_by:
        lines = []
        for writer in relation.written_by:
            via = f" via trigger {writer.trigger}" if writer.trigger else ""
            reads = ", ".join(f"{ref.schema}.{ref.name}" for ref in writer.reads)
            lines.append(
                f"{writer.routine} ({writer.kind}){via}: {', '.join(writer.operations)}"
                + (f" from {reads}" if reads else "")
            )
        fields["written_by"] = "\n".join(lines)
    if relation.read_by:
        fields["read_by"] = "\n".join(relation.read_by)
    return fields


def query_history_metadata(relation: PostgresRelation) -> dict[str, Any]:
    """`query_calls`, `query_rows` and `written_by_queries` (with `query_history`), e.g.
    `INSERT from etl.staged_orders (12 calls, 340 rows, by etl): INSERT INTO mart.revenue ...`."""
    fields: dict[str, Any] = {}
    usage = relation.query_usage
    if usage is not None:
        fields |= {"query_calls": usage.calls, "query_rows": usage.rows}
    if relation.written_by_queries:
        fields["written_by_queries"] = "\n".join(
            f"{', '.join(q.operations)} from {', '.join(f'{r.schema}.{r.name}' for r in q.reads)} "
            f"({q.calls} calls, {q.rows} rows{f', by {q.role}' if q.role else ''}): {q.query}"
            for q in relation.written_by_queries
        )
    return fields


# The listing is one Markdown value on the sync job: past this many routines, the rest are counted.
_LISTED_ROUTINES = 1000
_LISTED_TRIGGER_TABLES = 3


def routine_listing(databases: Sequence[PostgresDatabase], filters: PostgresFilters) -> MarkdownMetadataValue | None:
    """Every routine of the selected schemas as a Markdown table per database and schema: the
    `dagster-postgres-connection/routines` metadata of the connection's sync job.

    Routines are not assets (they hold no data, are never materialized), so they are listed on
    the one definition that stands for the whole connection; the relations they read and write
    carry `read_by` / `written_by` and the lineage itself.
    """
    sections: list[str] = []
    listed = total = 0
    for database in databases:
        by_schema: dict[str, list[PostgresRoutine]] = {}
        for routine in database.routines:
            if select_schema(filters, routine.schema):
                by_schema.setdefault(routine.schema, []).append(routine)
        for schema, routines in by_schema.items():
            total += len(routines)
            rows = []
            for routine in routines:
                if listed == _LISTED_ROUTINES:
                    break
                listed += 1
                rows.append(_routine_row(routine))
            if rows:
                sections.append(f"**{database.name}.{schema}**\n\n{_ROUTINE_HEADER}\n" + "\n".join(rows))
    if not total:
        return None
    if total > listed:
        sections.append(f"... and {total - listed} more routines.")
    return MarkdownMetadataValue("\n\n".join(sections))


_ROUTINE_HEADER = (
    "| Routine | Kind | Language | Returns | Volatility | Security definer | Owner | Triggers | Writes | Reads | Not followed | Comment |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _routine_row(routine: PostgresRoutine) -> str:
    def names(refs: Sequence[PostgresRelationRef]) -> str:
        return ", ".join(f"{ref.schema}.{ref.name}" for ref in refs)

    writes = "; ".join(f"{', '.join(w.operations)} {w.relation.schema}.{w.relation.name}" for w in routine.writes)
    # One trigger function often fires on many tables (Pagila's `last_updated` on 14): grouped.
    tables_by_trigger: dict[str, list[str]] = {}
    for t in routine.triggers:
        tables_by_trigger.setdefault(f"{t.name} ({t.timing} {' OR '.join(t.events)})", []).append(f"{t.schema}.{t.table}")
    triggers = "; ".join(
        f"{trigger} on {', '.join(tables[:_LISTED_TRIGGER_TABLES])}"
        + (f" and {len(tables) - _LISTED_TRIGGER_TABLES} more" if len(tables) > _LISTED_TRIGGER_TABLES else "")
        for trigger, tables in tables_by_trigger.items()
    )
    gaps = []
    if routine.dynamic_sql:
        gaps.append(f"{routine.dynamic_sql} dynamic SQL (EXECUTE)")
    gaps.extend(f"unparsed: {statement}" for statement in routine.unparsed)
    if routine.unresolved:
        gaps.append(f"unresolved: {', '.join(routine.unresolved)}")
    if routine.language not in ("sql", "plpgsql"):
        gaps.append(f"{routine.language} body not read")
    cells = [
        f"`{routine.signature}`", routine.kind, routine.language, routine.return_type or "",
        routine.volatility or "", "yes" if routine.security_definer else "", routine.owner or "",
        triggers, writes, names(routine.reads), "; ".join(gaps), routine.comment or "",
    ]
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"
