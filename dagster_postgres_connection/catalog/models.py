"""The catalog snapshot: what was read from Postgres, kept as the component's state.

Records are frozen and type-checked at construction. `codec.py` stores them as JSON rows with
serdes' evolution rules (a field added later takes its default when a snapshot without it is
read); they are also whitelisted for Dagster's serdes, whose storage names are global, hence the
`Postgres` prefix of every record. (No `from __future__ import annotations` here: `@record`
cannot resolve string annotations on Python 3.11.)
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from dagster_shared.record import record
from dagster_shared.serdes import whitelist_for_serdes
from dagster_shared.utils.cached_method import cached_method

from dagster_postgres_connection.catalog._records import compile_record_constructors

# Bumped when a snapshot can no longer be read by this version; loading an older one asks for a re-sync.
# 2: a relation's columns are stored as compact rows (`PostgresColumnsSerializer`).
# 3: every record is a row, outside serdes (`codec.py`); older formats ask for a re-sync.
SNAPSHOT_FORMAT_VERSION = 3


# A relation within one database, and across a connection's databases.
RelationName = tuple[str, str]  # (schema, name), the Inspector's shape
RelationKey = tuple[str, str, str]  # (database, schema, name), as in `relations_by_key`


@whitelist_for_serdes
class PostgresRelationKind(Enum):
    """What a relation is: the one home of all that follows from it (its `pg_class.relkind`,
    its Dagster kinds, whether filters treat it as a view, whether the sync measures it).
    The value is its own Dagster kind."""

    TABLE = "table"
    PARTITIONED_TABLE = "partitioned_table"
    VIEW = "view"
    MATERIALIZED_VIEW = "materialized_view"
    FOREIGN_TABLE = "foreign_table"

    @property
    def relkind(self) -> str:
        """Its `pg_class.relkind`: r, p, v, m or f."""
        return _TRAITS[self].relkind

    @property
    def dagster_kinds(self) -> frozenset[str]:
        """The asset's kinds: `postgres`, `table` or `view`, and this kind's own value."""
        return _TRAITS[self].dagster_kinds

    @property
    def is_view(self) -> bool:
        """Views and materialized views (selected by `filters.views`, not `filters.tables`)."""
        return _TRAITS[self].is_view

    @property
    def is_measured(self) -> bool:
        """Has data statistics of its own (or its partitions') for the sync to watch; views and
        foreign tables have none."""
        return _TRAITS[self].is_measured

    @classmethod
    def from_relkind(cls, relkind: str) -> "PostgresRelationKind":
        """`'r'` -> `TABLE`, ... (`KeyError` for kinds that are never assets, e.g. `'i'`)."""
        return _KIND_BY_RELKIND[relkind]

    @classmethod
    def relkinds_sql(cls, kinds: "Iterable[PostgresRelationKind] | None" = None) -> str:
        """The relkinds of `kinds` (default: every kind) as an SQL list, e.g. `('r', 'p', 'f')`."""
        return "(" + ", ".join(f"'{kind.relkind}'" for kind in (kinds or cls)) + ")"


@dataclass(frozen=True)
class _KindTraits:
    relkind: str
    dagster_kinds: frozenset[str]
    is_view: bool
    is_measured: bool


_TRAITS = {
    PostgresRelationKind.TABLE: _KindTraits("r", frozenset({"postgres", "table"}), False, True),
    PostgresRelationKind.PARTITIONED_TABLE: _KindTraits(
        "p", frozenset({"postgres", "table", "partitioned_table"}), False, True
    ),
    PostgresRelationKind.VIEW: _KindTraits("v", frozenset({"postgres", "view"}), True, False),
    PostgresRelationKind.MATERIALIZED_VIEW: _KindTraits(
        "m", frozenset({"postgres", "view", "materialized_view"}), True, True
    ),
    PostgresRelationKind.FOREIGN_TABLE: _KindTraits(
        "f", frozenset({"postgres", "table", "foreign_table"}), False, False
    ),
}
_KIND_BY_RELKIND = {traits.relkind: kind for kind, traits in _TRAITS.items()}


@whitelist_for_serdes
@record
class PostgresColumn:
    """One column of a relation, in table order."""

    name: str
    type: str  # as Postgres spells it (format_type), e.g. `character varying(25)`
    nullable: bool
    default: str | None = None  # never the expression of a generated column (see `generated`)
    comment: str | None = None
    enum_labels: Sequence[str] = ()  # the enum's labels in order, for an enum, an array of one, or a domain over one
    domain_base_type: str | None = None  # for a domain: the type it is based on, e.g. `bigint`
    identity: str | None = None  # `ALWAYS` or `BY DEFAULT` for `GENERATED ... AS IDENTITY`
    generated: str | None = None  # `STORED` or `VIRTUAL` (PG 18) for `GENERATED ALWAYS AS (...)`
    generation_expression: str | None = None


# Field order of `queries.LIST_COLUMNS` after schema and relation.
COLUMN_FIELDS = (
    "name",
    "type",
    "nullable",
    "default",
    "comment",
    "enum_labels",
    "domain_base_type",
    "identity",
    "generated",
    "generation_expression",
)


@whitelist_for_serdes
@record
class PostgresForeignKey:
    """A foreign key: `columns` reference `referred_columns` of `referred_schema.referred_table`."""

    name: str
    columns: Sequence[str]
    referred_schema: str
    referred_table: str
    referred_columns: Sequence[str]


@whitelist_for_serdes
@record
class PostgresUniqueConstraint:
    """A `UNIQUE` constraint over `columns`."""

    name: str
    columns: Sequence[str]


@whitelist_for_serdes
@record
class PostgresRelationRef:
    """Another relation of the same database; `root_*` names the top partitioned table when it is a partition."""

    schema: str
    name: str
    root_schema: str | None = None
    root_name: str | None = None

    def rolled_up(self) -> "PostgresRelationRef":
        """The relation that stands for this one when partitions are not assets of their own."""
        if self.root_schema is None or self.root_name is None:
            return self
        return PostgresRelationRef(schema=self.root_schema, name=self.root_name)


@whitelist_for_serdes
@record
class PostgresColumnRef:
    relation: PostgresRelationRef
    column: str


@whitelist_for_serdes
@record
class PostgresColumnLineage:
    """One output column of a view and the input columns it is computed from."""

    column: str
    inputs: Sequence[PostgresColumnRef]


@whitelist_for_serdes
@record
class PostgresIndex:
    name: str
    columns: Sequence[str]  # column names, or expressions for expression indexes
    unique: bool
    primary: bool
    method: str  # btree, hash, gist, gin, brin, ...
    definition: str  # pg_get_indexdef, e.g. `CREATE INDEX ... USING gist (fulltext)`
    # Per key column: `DESC`, `NULLS FIRST`, `DESC NULLS LAST` or "" (the default order); ()
    # in snapshots taken before it was read.
    orderings: Sequence[str] = ()
    include_columns: Sequence[str] = ()  # INCLUDE (...): stored in the index, not part of its key
    predicate: str | None = None  # a partial index's WHERE, e.g. `(active IS TRUE)`
    nulls_not_distinct: bool = False  # a unique index's NULLS NOT DISTINCT (PG 15+)

    @property
    def partial(self) -> bool:
        """Covers only the rows its predicate selects: unique or not, it says nothing of the others."""
        return self.predicate is not None


@whitelist_for_serdes
@record
class PostgresConstraint:
    """A check or exclusion constraint, with its definition as Postgres prints it."""

    name: str
    definition: str  # pg_get_constraintdef, e.g. `CHECK (amount >= 0)`


@whitelist_for_serdes
@record
class PostgresPartition:
    schema: str
    name: str
    parent: str  # name of the partitioned table it is attached to (the root or a sub-partitioned table)
    bound: str  # e.g. `FOR VALUES FROM ('2022-01-01') TO ('2022-02-01')`, `DEFAULT`
    level: int  # 1 for a partition of the root, 2 for a sub-partition, ...
    is_leaf: bool = True  # False for a sub-partitioned table
    partition_key: str | None = None  # of a sub-partitioned table, e.g. `LIST (region)`
    row_estimate: int | None = None
    size_bytes: int | None = None


@whitelist_for_serdes
@record
class PostgresPartitioning:
    """How a partitioned table is split: everything below it, rolled up into one asset."""

    strategy: str  # range, list or hash
    key: str  # the partition key, e.g. `payment_date`
    partitions: Sequence[PostgresPartition] = ()

    @property
    def leaf_partitions(self) -> Sequence[PostgresPartition]:
        return [p for p in self.partitions if p.is_leaf]


@whitelist_for_serdes
@record
class PostgresForeignTable:
    """Where a foreign table's rows live. Credentials are never read: user mappings are not queried."""

    server: str
    wrapper: str
    server_options: Mapping[str, str] = {}
    table_options: Mapping[str, str] = {}


# --- Routines: functions, procedures, the triggers that run them, what their SQL reads and writes
# (catalog/routines.py reads them, catalog/routine_lineage.py parses their bodies).


@whitelist_for_serdes
@record
class PostgresTrigger:
    """A trigger that runs a routine: `table` fires it; NEW and OLD in the routine are its rows."""

    name: str
    schema: str  # of the firing table
    table: str
    timing: str  # BEFORE, AFTER or INSTEAD OF
    events: Sequence[str]  # INSERT, UPDATE, DELETE, TRUNCATE
    level: str  # ROW or STATEMENT
    enabled: bool = True


@whitelist_for_serdes
@record
class PostgresRoutineWrite:
    """One relation a routine writes (INSERT, UPDATE, DELETE, MERGE, CREATE TABLE AS, SELECT
    INTO), what the statements that write it read, and column lineage where they allow it."""

    relation: PostgresRelationRef
    operations: Sequence[str]  # e.g. `INSERT`, `MERGE`, in statement order, each once
    reads: Sequence[PostgresRelationRef] = ()
    column_lineage: Sequence[PostgresColumnLineage] = ()


@whitelist_for_serdes
@record
class PostgresRoutine:
    """A function or procedure of a selected schema (extension members and aggregates excluded).

    The lineage fields are filled for `sql` and `plpgsql` bodies; `dynamic_sql` counts `EXECUTE`
    statements (their text is only known when they run: reported, never guessed), `unparsed`
    holds the start of each statement that could not be parsed, `unresolved` names of relations
    that are in no schema of the routine's search path (e.g. temporary tables it creates).
    """

    schema: str
    name: str
    kind: str  # `function` or `procedure`
    arguments: str  # pg_get_function_identity_arguments, e.g. `p_day date, p_store integer`
    language: str
    return_type: str | None = None  # pg_get_function_result; None for procedures
    volatility: str | None = None  # `immutable`, `stable` or `volatile` (functions)
    security_definer: bool = False
    owner: str | None = None
    comment: str | None = None
    search_path: Sequence[str] | None = None  # from `SET search_path` on the routine (proconfig)
    triggers: Sequence[PostgresTrigger] = ()
    writes: Sequence[PostgresRoutineWrite] = ()
    reads: Sequence[PostgresRelationRef] = ()  # every relation any statement reads
    dynamic_sql: int = 0
    unparsed: Sequence[str] = ()
    unresolved: Sequence[str] = ()

    @property
    def signature(self) -> str:
        """`schema.name(arguments)`: names one routine among overloads."""
        return f"{self.schema}.{self.name}({self.arguments})"


@whitelist_for_serdes
@record
class PostgresRoutineLineage:
    """On a relation: one routine that writes it (run by `trigger` when set), what it reads to
    do so, and column lineage where its statements allow it."""

    routine: str  # `PostgresRoutine.signature`
    kind: str  # `function` or `procedure`
    operations: Sequence[str]
    reads: Sequence[PostgresRelationRef] = ()
    column_lineage: Sequence[PostgresColumnLineage] = ()
    trigger: str | None = None  # `name on schema.table (AFTER INSERT)`


@whitelist_for_serdes
@record
class PostgresPolicy:
    """A row-level security policy (`CREATE POLICY`), as `pg_policies` shows it."""

    name: str
    command: str  # ALL, SELECT, INSERT, UPDATE or DELETE
    permissive: bool  # False: RESTRICTIVE
    roles: Sequence[str]  # `PUBLIC` for every role
    using: str | None = None  # which existing rows it lets through (pg_get_expr)
    with_check: str | None = None  # which new rows it accepts


# --- Query history (catalog/query_history.py, opt-in `query_history`): what pg_stat_statements
# recorded running against each relation.


@whitelist_for_serdes
@record
class PostgresQueryLineage:
    """On a relation: one executed statement that wrote it (INSERT ... SELECT, CREATE TABLE AS,
    MERGE, UPDATE ... FROM) as pg_stat_statements recorded it, and what it read."""

    query: str  # the normalized text (constants as $1), shortened
    operations: Sequence[str]
    calls: int
    rows: int
    role: str | None = None
    reads: Sequence[PostgresRelationRef] = ()
    column_lineage: Sequence[PostgresColumnLineage] = ()


@whitelist_for_serdes
@record
class PostgresQueryUsage:
    """What pg_stat_statements recorded for statements naming a relation, since its last reset."""

    calls: int
    rows: int  # returned or affected by those statements
    statements: int  # distinct (normalized) statements


@whitelist_for_serdes
@record
class PostgresRelation:
    """A table, partitioned table, view, materialized view or foreign table, as read from the catalog."""

    database: str
    schema: str
    name: str
    kind: PostgresRelationKind
    columns: Sequence[PostgresColumn]
    owner: str | None = None
    comment: str | None = None
    row_estimate: int | None = None  # pg_class.reltuples; None when never analyzed
    size_bytes: int | None = None
    size_is_estimate: bool = False  # True when taken from relpages because the exact size was unavailable
    primary_key_name: str | None = None
    primary_key: Sequence[str] = ()
    foreign_keys: Sequence[PostgresForeignKey] = ()
    unique_constraints: Sequence[PostgresUniqueConstraint] = ()
    view_definition: str | None = None
    deps: Sequence[PostgresRelationRef] = ()  # what a view reads, from pg_depend (exact)
    column_lineage: Sequence[PostgresColumnLineage] = ()  # views: parsed, and checked against pg_depend
    indexes: Sequence[PostgresIndex] = ()
    check_constraints: Sequence[PostgresConstraint] = ()
    exclusion_constraints: Sequence[PostgresConstraint] = ()
    partitioning: PostgresPartitioning | None = None  # set on a top-level partitioned table
    partition_of: PostgresRelationRef | None = None  # set on a partition: its direct parent, root in `root_*`
    partition_bound: str | None = None
    inherits_from: Sequence[PostgresRelationRef] = ()  # legacy (INHERITS) parents
    foreign_table: PostgresForeignTable | None = None
    # Access (catalog/security.py): roles granted SELECT directly (`PUBLIC` included), row-level
    # security enabled / forced on the owner too, and its policies.
    select_grantees: Sequence[str] = ()
    column_select_grants: Mapping[str, Sequence[str]] = {}  # role -> the only columns it may SELECT
    row_security: bool = False
    force_row_security: bool = False
    policies: Sequence[PostgresPolicy] = ()
    # Routines (catalog/routine_lineage.py): those that write this relation and what they read,
    # and the signatures of those that read it.
    written_by: Sequence[PostgresRoutineLineage] = ()
    read_by: Sequence[str] = ()
    # Query history (catalog/query_history.py), with `query_history: true` only.
    written_by_queries: Sequence[PostgresQueryLineage] = ()
    query_usage: PostgresQueryUsage | None = None

    @property
    def qualified_name(self) -> str:
        """`database.schema.name`, the value of `dagster/table_name`."""
        return f"{self.database}.{self.schema}.{self.name}"


@whitelist_for_serdes
@record
class PostgresSkippedObject:
    """Something the connecting role could not read, and why: reported, never silently dropped."""

    database: str
    schema: str | None
    name: str | None
    reason: str

    @property
    def label(self) -> str:
        return ".".join(part for part in (self.database, self.schema, self.name) if part)


@whitelist_for_serdes
@record
class PostgresDatabase:
    """The relations read from one database, in one `REPEATABLE READ` snapshot."""

    name: str
    server_version: str
    relations: Sequence[PostgresRelation]
    # Of the catalog this was read from (`fingerprint.py`); "" when unknown (older snapshots) or
    # when the read left something out, so the next sync reads again.
    catalog_fingerprint: str = ""
    routines: Sequence[PostgresRoutine] = ()  # of the selected schemas, by schema, name, arguments
    # With `query_history: true`: why pg_stat_statements could not be read here (None: it was, or off).
    query_history_problem: str | None = None


@whitelist_for_serdes
@record
class PostgresCatalogSnapshot:
    """Everything one catalog read found (and skipped): the component's state, the factory's file."""

    connection_name: str
    host: str
    port: int
    captured_at: float  # unix timestamp of the read
    databases: Sequence[PostgresDatabase]
    skipped: Sequence[PostgresSkippedObject] = ()
    selection_fingerprint: str = ""  # hash of databases + filters, to warn when the config changed
    format_version: int = SNAPSHOT_FORMAT_VERSION
    statement_count: int = 0
    read_seconds: float = 0.0

    @cached_method
    def relations(self) -> Sequence[PostgresRelation]:
        """Every relation of every database, partitions included."""
        return [relation for database in self.databases for relation in database.relations]

    @cached_method
    def relations_by_key(self) -> Mapping[RelationKey, PostgresRelation]:
        """Relations by `(database, schema, name)`."""
        return {(r.database, r.schema, r.name): r for r in self.relations()}


compile_record_constructors(globals())  # see catalog/_records.py
