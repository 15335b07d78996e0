"""Who may read each relation: the roles granted SELECT on it, row-level security and its policies.

Catalog metadata about every role, read in two statements per database
(`queries.LIST_RELATION_ACCESS`, `queries.LIST_POLICIES`); unlike `access/`, which asks what the
connecting role itself may do.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection

from dagster_postgres_connection.catalog import queries
from dagster_postgres_connection.catalog._intern import intern, interned
from dagster_postgres_connection.catalog.connection import execute_despite_drops
from dagster_postgres_connection.catalog.models import PostgresPolicy, RelationName


@dataclass
class RelationSecurity:
    """One relation's access fields of `PostgresRelation`."""

    select_grantees: list[str] = field(default_factory=list)
    column_select_grants: dict[str, list[str]] = field(default_factory=dict)  # role -> columns
    row_security: bool = False
    force_row_security: bool = False
    policies: list[PostgresPolicy] = field(default_factory=list)


def read_relation_security(conn: Connection, schemas: Sequence[str]) -> dict[RelationName, RelationSecurity]:
    """Every relation's grantees, flags and policies in `schemas`; a relation not listed has none."""
    security: dict[RelationName, RelationSecurity] = defaultdict(RelationSecurity)
    if not schemas:
        return security
    for row in conn.execute(queries.LIST_RELATION_ACCESS, {"schemas": list(schemas)}):
        security[(row.schema, row.name)] = RelationSecurity(
            select_grantees=sorted(interned(row.select_grantees), key=_public_first),
            # a role granted the whole relation may read every column anyway
            column_select_grants={
                intern(role): interned(columns)
                for role, columns in sorted((row.column_select_grants or {}).items(), key=lambda item: _public_first(item[0]))
                if role not in row.select_grantees
            },
            row_security=row.row_security,
            force_row_security=row.force_row_security,
        )
    rows = execute_despite_drops(conn, queries.LIST_POLICIES, {"schemas": list(schemas)})
    for row in sorted(rows, key=lambda row: (row.schema, row.relation, row.name)):
        security[(row.schema, row.relation)].policies.append(
            PostgresPolicy(
                name=row.name,
                command=row.command,
                permissive=row.permissive,
                roles=sorted(row.roles, key=_public_first),
                using=row.using_expression,
                with_check=row.check_expression,
            )
        )
    return security


def _public_first(role: str) -> tuple[bool, str]:
    """`PUBLIC` first, then roles by name, whatever order the catalog lists them in."""
    return (role != "PUBLIC", role)
