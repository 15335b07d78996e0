"""GRANT statements for a read-only role: the fixes `check` prints and the `grant-sql` recipe.

Statements are one per line, end in `;` and are ready to paste into psql. Identifiers are
quoted exactly when PostgreSQL needs it (upper case, reserved words, special characters),
by SQLAlchemy's PostgreSQL identifier preparer. A `\\connect` line switches database, because
schema and table grants only exist inside their database.
"""

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.dialects import postgresql

_PREPARER = postgresql.dialect().identifier_preparer


def quote_ident(name: str) -> str:
    """`film` -> `film`, `Sales` -> `"Sales"`, `a"b` -> `"a""b"`."""
    return _PREPARER.quote(name)


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def connect_line(database: str) -> str:
    """psql's meta-command to run the following statements in `database`."""
    return f"\\connect {quote_ident(database)}"


def grant_connect(database: str, role: str) -> str:
    return f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {quote_ident(role)};"


def grant_usage(schema: str, role: str) -> str:
    return f"GRANT USAGE ON SCHEMA {quote_ident(schema)} TO {quote_ident(role)};"


def grant_select_on_all_tables(schema: str, role: str) -> str:
    """Covers tables, partitioned and foreign tables, views and materialized views of `schema`."""
    return f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote_ident(schema)} TO {quote_ident(role)};"


def grant_select_on_all_sequences(schema: str, role: str) -> str:
    return f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {quote_ident(schema)} TO {quote_ident(role)};"


def grant_select(schema: str, names: Sequence[str], role: str, *, sequences: bool = False) -> str:
    """One GRANT for several relations (or sequences) of one schema."""
    objects = ", ".join(qualified(schema, name) for name in names)
    keyword = "SEQUENCE" if sequences else "TABLE"
    return f"GRANT SELECT ON {keyword} {objects} TO {quote_ident(role)};"


def revoke_create_on_schema(schema: str, role: str | None) -> str:
    """Takes CREATE on `schema` away from `role`, or from PUBLIC (every role) when None."""
    grantee = "PUBLIC" if role is None else quote_ident(role)
    return f"REVOKE CREATE ON SCHEMA {quote_ident(schema)} FROM {grantee};"


def alter_default_privileges(schema: str, role: str, creator: str | None = None) -> str:
    """SELECT on the tables `creator` (default: whoever runs it) will create in `schema`."""
    for_role = f"FOR ROLE {quote_ident(creator)} " if creator else ""
    return (
        f"ALTER DEFAULT PRIVILEGES {for_role}IN SCHEMA {quote_ident(schema)} "
        f"GRANT SELECT ON TABLES TO {quote_ident(role)};"
    )


def read_only_recipe(
    role: str,
    schemas_by_database: Mapping[str, Sequence[str]],
    *,
    create_role: bool = True,
    creators: Iterable[str] = (),
    query_history: bool = False,
) -> list[str]:
    """The full read-only role recipe (as in the Dagster+ docs), for psql.

    The password is never written into the script: psql's `\\password` asks for it and sends
    only its hash, so it lands in neither the shell history nor the server log.

    Args:
        role: The role to create and grant to.
        schemas_by_database: Schemas to grant on, per database.
        create_role: Start with `CREATE ROLE ... LOGIN` and `\\password` (off for an existing role).
        creators: Roles that create tables; default privileges are set for each, so their future
            tables are readable too. Empty: for the role running the script.
        query_history: Also what `query_history: true` needs: pg_stat_statements in each
            database and `pg_read_all_stats` for the role (the library must be preloaded).
    """
    lines = [f"-- Read-only role {quote_ident(role)} for dagster-postgres-connection; run as a superuser in psql."]
    if create_role:
        lines += [f"CREATE ROLE {quote_ident(role)} WITH LOGIN;", f"\\password {quote_ident(role)}"]
    lines += [grant_connect(database, role) for database in schemas_by_database]
    if query_history:
        lines += [
            "-- query_history: needs shared_preload_libraries = 'pg_stat_statements' in postgresql.conf (then a restart).",
            f"GRANT pg_read_all_stats TO {quote_ident(role)};",
        ]
    creator_list: list[str | None] = list(creators) or [None]
    for database, schemas in schemas_by_database.items():
        lines.append(connect_line(database))
        if query_history:
            lines.append("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;")
        for schema in schemas:
            lines += [
                grant_usage(schema, role),
                grant_select_on_all_tables(schema, role),
                grant_select_on_all_sequences(schema, role),
            ]
            lines += [alter_default_privileges(schema, role, creator) for creator in creator_list]
    return lines
