"""The catalog snapshot: what was read from Postgres, serialized as the component's state.

Records are frozen, type-checked at construction and stored with Dagster's serdes, so a field
added later takes its default when an older snapshot is read. Every record name starts with
`Postgres` because serdes storage names are global. (No `from __future__ import annotations`
here: `@record` cannot resolve string annotations on Python 3.11.)
"""

from collections.abc import Mapping, Sequence
from enum import Enum

from dagster_shared.record import record
from dagster_shared.serdes import whitelist_for_serdes
from dagster_shared.utils.cached_method import cached_method

# Bumped when a snapshot can no longer be read by this version; loading an older one asks for a re-sync.
SNAPSHOT_FORMAT_VERSION = 1


@whitelist_for_serdes
class PostgresRelationKind(Enum):
    TABLE = "table"
    PARTITIONED_TABLE = "partitioned_table"
    VIEW = "view"
    MATERIALIZED_VIEW = "materialized_view"
    FOREIGN_TABLE = "foreign_table"

    @property
    def is_view(self) -> bool:
        return self in (PostgresRelationKind.VIEW, PostgresRelationKind.MATERIALIZED_VIEW)

    @classmethod
    def from_relkind(cls, relkind: str) -> "PostgresRelationKind":
        return _KIND_BY_RELKIND[relkind]


_KIND_BY_RELKIND = {
    "r": PostgresRelationKind.TABLE,
    "p": PostgresRelationKind.PARTITIONED_TABLE,
    "v": PostgresRelationKind.VIEW,
    "m": PostgresRelationKind.MATERIALIZED_VIEW,
    "f": PostgresRelationKind.FOREIGN_TABLE,
}


@whitelist_for_serdes
@record
class PostgresColumn:
    name: str
    type: str  # as Postgres spells it (format_type), e.g. `character varying(25)`
    nullable: bool
    default: str | None = None
    comment: str | None = None


@whitelist_for_serdes
@record
class PostgresForeignKey:
    name: str
    columns: Sequence[str]
    referred_schema: str
    referred_table: str
    referred_columns: Sequence[str]


@whitelist_for_serdes
@record
class PostgresUniqueConstraint:
    name: str
    columns: Sequence[str]


@whitelist_for_serdes
@record
class PostgresRelation:
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
    name: str
    server_version: str
    relations: Sequence[PostgresRelation]


@whitelist_for_serdes
@record
class PostgresCatalogSnapshot:
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
        return [relation for database in self.databases for relation in database.relations]

    @cached_method
    def relations_by_key(self) -> Mapping[tuple[str, str, str], PostgresRelation]:
        return {(r.database, r.schema, r.name): r for r in self.relations()}
