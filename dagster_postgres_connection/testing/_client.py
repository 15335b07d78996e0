"""Using a running embedded server: connections, and what tests set up through them.

SQLAlchemy URLs, superuser connections and SQL, SQL files fed to the bundled ``psql``,
databases, the Pagila sample, a login role with the Dagster+ read-only recipe, and
``pg_hba.conf`` rules that make roles use their password. ``ServerClient`` holds them as
methods of ``EmbeddedPostgres``; they need nothing of the server but its address, version
and data folder, not how it was started.
"""

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from sqlalchemy.engine import URL

from dagster_postgres_connection.testing._process import (
    LOCALHOST,
    SUPERUSER,
    EmbeddedPostgresError,
    bin_dir,
    clean_env,
    write_as_owner,
)

PAGILA_DIR = Path(__file__).resolve().parents[2] / "datasets" / "pagila"

_HBA_BEGIN = "# >>> dagster_postgres_connection.testing: require_passwords()"
_HBA_END = "# <<< dagster_postgres_connection.testing"
# pg_dump 17 writes this; PostgreSQL 16 rejects the unknown setting.
_PG17_ONLY_LINE = re.compile(rb"^SET transaction_timeout = \d+;\r?\n", re.MULTILINE)


class ServerClient:
    """The client half of ``EmbeddedPostgres``: connections, SQL, databases, roles, passwords.

    A mixin: it uses only the attributes declared below, which the server class provides.
    """

    if TYPE_CHECKING:  # provided by EmbeddedPostgres; pyright checks that they match
        host: str
        version: int
        pgdata: Path

        @property
        def port(self) -> int: ...

        @property
        def socket_dir(self) -> Path: ...

    # -- connecting --------------------------------------------------------------------------

    def url(
        self,
        database: str = "postgres",
        *,
        user: str = SUPERUSER,
        password: str | None = None,
        tcp: bool = True,
    ) -> URL:
        """SQLAlchemy URL (``postgresql+psycopg2``) over TCP, or over the socket with ``tcp=False``.

        ``URL`` escapes special characters and masks the password in ``str``/``repr``.
        """
        return URL.create(
            "postgresql+psycopg2",
            username=user,
            password=password,
            host=self.host if tcp else str(self.socket_dir),
            port=self.port,
            database=database,
        )

    @contextlib.contextmanager
    def connect(self, database: str = "postgres") -> Iterator[psycopg2.extensions.connection]:
        """A superuser psycopg2 connection over the socket, in autocommit mode."""
        conn = psycopg2.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            connect_timeout=10,
            application_name="dpc-embedded-postgres",
        )
        try:
            conn.autocommit = True
            yield conn
        finally:
            conn.close()

    def execute(self, statements: str | sql.Composable, database: str = "postgres") -> None:
        """Run SQL as the superuser in autocommit mode.

        Several ``;``-separated statements are fine; PostgreSQL then runs them as one implicit
        transaction, so ``CREATE DATABASE`` and friends must be sent alone.
        """
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute(statements)

    def query(
        self,
        statement: str | sql.Composable,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        database: str = "postgres",
    ) -> list[tuple[Any, ...]]:
        """Run one query as the superuser and return all rows."""
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())

    def psql_file(self, path: Path, database: str) -> None:
        """Feed a SQL file to the bundled ``psql`` (one run, ``ON_ERROR_STOP=1``).

        On PostgreSQL < 17 the ``SET transaction_timeout = 0;`` line that pg_dump 17 writes is
        dropped; any other error fails with psql's message.
        """
        script = Path(path).read_bytes()
        if self.version < 17:
            script = _PG17_ONLY_LINE.sub(b"", script)
        result = subprocess.run(
            [
                str(bin_dir(self.version) / "psql"),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                f"--host={self.socket_dir}",
                f"--port={self.port}",
                f"--username={SUPERUSER}",
                f"--dbname={database}",
                "--file=-",
            ],
            input=script,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=clean_env(),
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"psql failed on `{path}` in database `{database}` "
                f"(exit {result.returncode}):\n{result.stderr.decode(errors='replace').strip()}"
            )

    # -- databases and roles -----------------------------------------------------------------

    def database_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM pg_database WHERE datname = %s", [name]))

    def create_database(self, name: str, template: str | None = None) -> None:
        """``CREATE DATABASE name [TEMPLATE template]`` (the template must have no sessions)."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self.execute(statement)

    def drop_database(self, name: str) -> None:
        """Drop the database if it exists, ending its sessions (``WITH (FORCE)``)."""
        is_template = self.query("SELECT datistemplate FROM pg_database WHERE datname = %s", [name])
        if is_template == [(True,)]:  # PostgreSQL refuses to drop a template database
            self.execute(
                sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
            )
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def load_pagila(
        self,
        database: str = "pagila",
        *,
        dataset_dir: Path = PAGILA_DIR,
        refresh_materialized_views: bool = True,
    ) -> None:
        """Create ``database`` with the Pagila sample (schema + data, one psql run each).

        The load goes to ``<database>__loading`` first and is renamed at the end, so an
        interrupted load never leaves a half-filled ``database`` behind. Afterwards the
        ``WITH NO DATA`` materialized view ``rental_by_category`` is refreshed (unless told
        otherwise) and everything is ANALYZEd, so ``reltuples`` estimates are real numbers.
        """
        schema_file = dataset_dir / "pagila-schema.sql"
        data_file = dataset_dir / "pagila-data.sql"
        for file in (schema_file, data_file):
            if not file.is_file():
                raise EmbeddedPostgresError(
                    f"Did not find `{file}`; pass dataset_dir= pointing at the Pagila dump."
                )
        if self.database_exists(database):
            raise EmbeddedPostgresError(f"Database `{database}` already exists; drop it first.")
        staging = f"{database}__loading"
        self.drop_database(staging)
        self.create_database(staging)
        try:
            self.psql_file(schema_file, staging)
            self.psql_file(data_file, staging)
            if refresh_materialized_views:
                self.execute("REFRESH MATERIALIZED VIEW public.rental_by_category", staging)
            self.execute("ANALYZE", staging)
        except BaseException:
            self.drop_database(staging)
            raise
        self.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(staging), sql.Identifier(database)
            )
        )

    def create_readonly_role(
        self,
        role: str,
        password: str,
        *,
        databases: Sequence[str],
        schemas: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Create (or update) a login role with the Dagster+ read-only recipe.

        Per database: ``GRANT CONNECT ON DATABASE``; per schema: ``GRANT USAGE ON SCHEMA``,
        ``GRANT SELECT ON ALL TABLES IN SCHEMA``, ``GRANT SELECT ON ALL SEQUENCES IN SCHEMA``
        and ``ALTER DEFAULT PRIVILEGES IN SCHEMA .. GRANT SELECT ON TABLES``.

        Args:
            role: Role name. If it exists, its password is reset and LOGIN granted.
            password: Stored as SCRAM (the server default); never logged.
            databases: Databases to grant on.
            schemas: Schemas per database; a database missing here gets all its non-system
                schemas (everything but ``pg_*`` and ``information_schema``).
        """
        ident = sql.Identifier(role)
        exists = self.query("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        self.execute(
            sql.SQL("{} {} WITH LOGIN PASSWORD {}").format(verb, ident, sql.Literal(password))
        )
        for database in databases:
            self.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(database), ident
                )
            )
            db_schemas = (schemas or {}).get(database)
            if db_schemas is None:
                db_schemas = [
                    row[0]
                    for row in self.query(
                        "SELECT nspname FROM pg_namespace WHERE nspname <> 'information_schema'"
                        " AND nspname NOT LIKE 'pg\\_%' ORDER BY nspname",
                        database=database,
                    )
                ]
            for schema in db_schemas:
                s = sql.Identifier(schema)
                self.execute(
                    sql.SQL(
                        "GRANT USAGE ON SCHEMA {s} TO {r};"
                        " GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r};"
                        " GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r};"
                        " ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {r}"
                    ).format(s=s, r=ident),
                    database,
                )

    def require_passwords(self, roles: Sequence[str] | None = None) -> None:
        """Make ``roles`` (default: every role but ``postgres``) log in with a real password.

        ``initdb --auth=trust`` lets any password in. This puts ``scram-sha-256`` rules for
        TCP and the socket at the top of ``pg_hba.conf`` (replacing an earlier block of ours),
        keeps ``postgres`` trusted, reloads, and waits until new sessions see the new rules.
        """
        targets = "all" if roles is None else ",".join(_hba_quote(role) for role in roles)
        if not targets:
            raise EmbeddedPostgresError("require_passwords() needs at least one role.")
        block = [
            _HBA_BEGIN,
            f"local all {SUPERUSER} trust",
            f"host  all {SUPERUSER} {LOCALHOST}/32 trust",
            f"local all {targets} scram-sha-256",
            f"host  all {targets} {LOCALHOST}/32 scram-sha-256",
            _HBA_END,
        ]
        hba = self.pgdata / "pg_hba.conf"
        text = hba.read_text()
        start, end = text.find(_HBA_BEGIN), text.find(_HBA_END)
        if start != -1 and end != -1:
            text = text[:start] + text[end + len(_HBA_END) :].lstrip("\n")
        write_as_owner(hba, "\n".join(block) + "\n" + text)
        self.reload()
        errors = self.query(
            "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL"
        )
        if errors:
            raise EmbeddedPostgresError(f"pg_hba.conf has errors: {errors}")

    def reload(self) -> None:
        """``pg_reload_conf()``, then wait until a new session has the new configuration.

        The reload is asynchronous (a SIGHUP); without the wait, the next connection may still
        be judged by the old ``pg_hba.conf``.
        """
        (before,) = self.query("SELECT pg_conf_load_time()")[0]
        self.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while self.query("SELECT pg_conf_load_time()")[0][0] <= before:
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError("The server did not reload its configuration.")
            time.sleep(0.01)


def _hba_quote(role: str) -> str:
    if not role or any(ch in role for ch in '"\n\r'):
        raise EmbeddedPostgresError(f"Role name `{role}` cannot be written to pg_hba.conf.")
    return f'"{role}"'
