"""What the connecting role may read, write and will be able to read: batched, per database.

`inspect_privileges(settings)` asks the server once for the role and its databases, then each
selected database for its schemas, relations (sequences included) and default privileges: a
fixed number of statements whatever the number of objects. `check` turns the result into
findings with the exact GRANTs (`assess_privileges`), `preview` into the selection decisions.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from dagster_shared.record import record
from sqlalchemy import Connection

from dagster_postgres_connection.access import queries
from dagster_postgres_connection.access.readability import Readability
from dagster_postgres_connection.catalog._records import compile_record_constructors
from dagster_postgres_connection.catalog.connection import (
    catalog_transaction,
    create_catalog_engine,
)
from dagster_postgres_connection.catalog.models import PostgresRelationKind
from dagster_postgres_connection.catalog.selection import SelectionDecision, select_database
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.errors import PostgresConnectionError, PostgresUnreachableError

# Databases tried, after the configured ones, to ask the server about the role and its databases.
_BOOTSTRAP_DATABASES = ("postgres", "template1")
SEQUENCE_RELKIND = "S"


@record
class RoleAttributes:
    role: str
    is_superuser: bool
    can_create_role: bool
    can_create_database: bool
    bypasses_rls: bool
    writes_all_data: bool  # member of pg_write_all_data


@record
class DatabaseAccess:
    name: str
    exists: bool
    is_template: bool = False
    allows_connections: bool = True
    can_connect: bool = False
    can_create: bool = False


@record
class SchemaAccess:
    schema: str
    owner: str
    has_usage: bool
    can_create: bool


@record
class RelationAccess:
    schema: str
    name: str
    relkind: str  # pg_class.relkind: r, p, v, m, f, or S for sequences
    owner: str
    has_select: bool
    can_write: bool

    @property
    def kind(self) -> PostgresRelationKind | None:
        """None for a sequence: sequences are granted, never synced."""
        return None if self.relkind == SEQUENCE_RELKIND else PostgresRelationKind.from_relkind(self.relkind)

    def readability(self, schema_usage: bool) -> Readability:
        """Whether the role can read it, given USAGE on its schema (`readability.py`'s rule)."""
        return Readability.of(has_usage=schema_usage, has_select=self.has_select)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"


@record
class DatabasePrivileges:
    schemas: Sequence[SchemaAccess]
    relations: Sequence[RelationAccess]
    # (creator, schema) pairs whose future tables the role may SELECT; schema None = every schema
    default_select: Sequence[tuple[str, str | None]]

    def covers_future_tables(self, creator: str, schema: str) -> bool:
        return (creator, schema) in self.default_select or (creator, None) in self.default_select


@record
class DatabaseInspection:
    """One candidate database: whether the filters select it, and what the role may do in it."""

    access: DatabaseAccess
    decision: SelectionDecision
    privileges: DatabasePrivileges | None = None  # None when not selected or not connectable
    error: str | None = None  # connecting or reading failed although CONNECT is granted

    @property
    def name(self) -> str:
        return self.access.name


@record
class PrivilegeInspection:
    role: RoleAttributes
    databases: Sequence[DatabaseInspection]
    statement_count: int


def inspect_privileges(settings: PostgresConnectionSettings) -> PrivilegeInspection:
    """Reads the role's privileges on every database the configuration may select.

    Raises:
        PostgresUnreachableError: when no database can be connected to at all (wrong password,
            unreachable host, ...), with the message of the first configured database.
    """
    role, databases, statements = _read_server(settings)
    if settings.databases:
        by_name = {access.name: access for access in databases}
        candidates = [by_name.get(name) or DatabaseAccess(name=name, exists=False) for name in settings.databases]
    else:
        candidates = [access for access in databases if not access.is_template and access.allows_connections]

    def inspect_one(access: DatabaseAccess) -> tuple[DatabaseInspection, int]:
        decision = select_database(settings.filters, access.name)
        if not decision or not access.exists or not access.can_connect or not access.allows_connections:
            return DatabaseInspection(access=access, decision=decision), 0
        engine, counter = create_catalog_engine(settings, access.name)
        try:
            with catalog_transaction(engine, settings, access.name) as conn:
                privileges = read_database_privileges(conn)
            return DatabaseInspection(access=access, decision=decision, privileges=privileges), counter.count
        except PostgresConnectionError as error:  # this database only: the others are still checked
            return DatabaseInspection(access=access, decision=decision, error=str(error)), counter.count
        finally:
            engine.dispose()

    workers = max(1, min(settings.max_concurrent_connections, len(candidates)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dpc-privileges") as pool:
        results = list(pool.map(inspect_one, candidates))
    return PrivilegeInspection(
        role=role,
        databases=[inspection for inspection, _ in results],
        statement_count=statements + sum(count for _, count in results),
    )


def read_role_and_databases(conn: Connection) -> tuple[RoleAttributes, list[DatabaseAccess]]:
    """Two statements, from any database: pg_roles and pg_database are shared catalogs."""
    row = conn.execute(queries.ROLE_ATTRIBUTES).one()
    role = RoleAttributes(
        role=row.role,
        is_superuser=row.is_superuser,
        can_create_role=row.can_create_role,
        can_create_database=row.can_create_database,
        bypasses_rls=row.bypasses_rls,
        writes_all_data=row.writes_all_data,
    )
    databases = [
        DatabaseAccess(
            name=row.name,
            exists=True,
            is_template=row.is_template,
            allows_connections=row.allows_connections,
            can_connect=row.can_connect,
            can_create=row.can_create,
        )
        for row in conn.execute(queries.DATABASE_PRIVILEGES)
    ]
    return role, databases


def read_database_privileges(conn: Connection) -> DatabasePrivileges:
    """Three statements per database: schemas, relations and sequences, default privileges."""
    schemas = [
        SchemaAccess(schema=row.schema, owner=row.owner, has_usage=row.has_usage, can_create=row.can_create)
        for row in conn.execute(queries.SCHEMA_PRIVILEGES)
    ]
    relations = [
        RelationAccess(
            schema=row.schema, name=row.name, relkind=row.relkind, owner=row.owner,
            has_select=row.has_select, can_write=row.can_write,
        )
        for row in conn.execute(queries.RELATION_PRIVILEGES)
    ]
    default_select = [(row.creator, row.schema) for row in conn.execute(queries.DEFAULT_SELECT_GRANTS)]
    return DatabasePrivileges(schemas=schemas, relations=relations, default_select=default_select)


def _read_server(
    settings: PostgresConnectionSettings,
) -> tuple[RoleAttributes, list[DatabaseAccess], int]:
    """Asks the first database that lets us in; configured databases first, then the usual ones."""
    first_error: PostgresUnreachableError | None = None
    for database in dict.fromkeys([*(settings.databases or ()), *_BOOTSTRAP_DATABASES]):
        engine, counter = create_catalog_engine(settings, database)
        try:
            with catalog_transaction(engine, settings, database) as conn:
                role, databases = read_role_and_databases(conn)
            return role, databases, counter.count
        except PostgresUnreachableError as error:
            first_error = first_error or error
            # Only a database-level refusal is worth another try; a wrong password or an
            # unreachable host fails the same way everywhere.
            message = str(error).lower()
            if "does not exist" not in message and "permission denied for database" not in message:
                raise
        finally:
            engine.dispose()
    assert first_error is not None
    raise first_error


compile_record_constructors(globals())  # see catalog/_records.py
