"""Fixtures of the reliability suite: settings for the read-only role, a silent TCP listener,
and Debian's PostgreSQL with TLS (the bundled servers have no SSL support).
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from sqlalchemy.engine import URL

from dagster_postgres_connection.config import PostgresConnectionSettings, PostgresPassword
from dagster_postgres_connection.testing import LOCALHOST, find_free_port
from dagster_postgres_connection_tests.utils import PgTarget

PASSWORD_ENV = "DPC_RELIABILITY_PASSWORD"

SettingsFactory = Callable[..., PostgresConnectionSettings]


@pytest.fixture(name="make_settings")
def make_settings_fixture(monkeypatch: pytest.MonkeyPatch) -> SettingsFactory:
    """``make_settings(target, **overrides)``: settings of the read-only role for ``target``.

    The password goes into ``PASSWORD_ENV``, as a user would configure it; pass
    ``password="..."`` to put another one there (failure tests).
    """

    def make(target: PgTarget, *, password: str | None = None, **overrides: Any) -> PostgresConnectionSettings:
        monkeypatch.setenv(PASSWORD_ENV, target.password if password is None else password)
        values: dict[str, Any] = {
            "name": "reliability",
            "host": target.host,
            "port": target.port,
            "username": target.user,
            "password": PostgresPassword(env_var=PASSWORD_ENV),
            "databases": [target.database],
            "connect_timeout_seconds": 5,
        }
        values.update(overrides)
        return PostgresConnectionSettings(**values)

    return make


@pytest.fixture(name="silent_listener")
def silent_listener_fixture() -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a TCP server that accepts connections and never says a word.

    The kernel completes the handshake (so no "connection refused"); the accepting thread just
    holds the sockets until the test ends, like a firewall or a hung server would.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((LOCALHOST, 0))
    server.listen(16)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept_forever, name="silent-listener", daemon=True)
    thread.start()
    try:
        yield LOCALHOST, int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in held:
            sock.close()
        server.close()


# -- Debian's PostgreSQL with a self-signed certificate -------------------------------------

DEBIAN_INSTALL_HINT = (
    "Debian's PostgreSQL server is needed for the TLS tests: `apt-get install -y postgresql` "
    "(scripts/test.sh does it when run as root)."
)
TLS_SERVER_NAME = "dpc-tls-test-server"  # the certificate's CN: deliberately not 127.0.0.1


@dataclass(frozen=True)
class DebianPostgres:
    """A Debian PostgreSQL server with ``ssl = on`` and a self-signed certificate.

    ``target`` reaches database ``tls_db`` as a password-checked read-only role over TCP;
    ``root_cert`` is the server's own certificate, the root to trust for ``verify-ca``.
    """

    version: int
    target: PgTarget
    root_cert: Path
    wrong_root_cert: Path
    log_path: Path  # `log_connections = on`: each line says whether the session used SSL


def _debian_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _self_signed_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-newkey", "rsa:2048",
         "-subj", f"/CN={TLS_SERVER_NAME}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return key, cert


@pytest.fixture(name="debian_postgres", scope="session")
def debian_postgres_fixture() -> Iterator[DebianPostgres]:
    """Debian's PostgreSQL, started on a free port as the ``postgres`` system user (when root).

    Skipped only when the server is not installed and we are not root; as root (CI) a missing
    server is an error, since scripts/test.sh installs it.
    """
    bin_dir = _debian_bin_dir()
    as_root = os.geteuid() == 0
    if bin_dir is None:
        if as_root:
            pytest.fail(DEBIAN_INSTALL_HINT)
        pytest.skip(DEBIAN_INSTALL_HINT)
    if shutil.which("openssl") is None:
        pytest.fail("`openssl` is needed to make the test certificate: `apt-get install -y openssl`.")
    workdir = Path(tempfile.mkdtemp(prefix="dpc-debian-pg-"))
    os.chmod(workdir, 0o755)
    pgdata = workdir / "pgdata"
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []

    def run(*args: str) -> None:
        result = subprocess.run([*run_as, *args], capture_output=True, text=True, check=False, cwd=workdir)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    key, cert = _self_signed_certificate(workdir, "server")
    _, wrong_cert = _self_signed_certificate(workdir, "other")
    if as_root:
        for path in (workdir, key, cert):
            shutil.chown(path, "postgres", "postgres")
    key.chmod(0o600)
    port = find_free_port()
    run(str(bin_dir / "initdb"), f"--pgdata={pgdata}", "--username=postgres", "--auth-local=trust",
        "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
    conf = {
        "port": str(port), "listen_addresses": f"'{LOCALHOST}'", "unix_socket_directories": f"'{workdir}'",
        "ssl": "on", "ssl_cert_file": f"'{cert}'", "ssl_key_file": f"'{key}'", "fsync": "off",
        "log_connections": "on",
    }
    with (pgdata / "postgresql.conf").open("a") as handle:
        handle.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
    # Superuser over TCP without a password, for the fixture only; every other role needs one.
    hba = pgdata / "pg_hba.conf"
    hba.write_text(f"host all postgres {LOCALHOST}/32 trust\n" + hba.read_text())
    log_path = workdir / "postgres.log"
    run(str(bin_dir / "pg_ctl"), f"--pgdata={pgdata}", f"--log={log_path}", "--wait", "start")
    try:
        password = "tls-Reader-pw!"
        with contextlib.closing(
            psycopg2.connect(host=LOCALHOST, port=port, user="postgres", dbname="postgres", sslmode="disable")
        ) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE ROLE tls_reader LOGIN PASSWORD %s", [password])
                cur.execute("CREATE DATABASE tls_db")
        with contextlib.closing(
            psycopg2.connect(host=LOCALHOST, port=port, user="postgres", dbname="tls_db", sslmode="disable")
        ) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE public.orders (id int PRIMARY KEY, total numeric)")
                cur.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tls_reader")
        target = PgTarget(
            version=int(bin_dir.parent.name), host=LOCALHOST, port=port, socket_dir=workdir,
            database="tls_db", user="tls_reader", password=password,
            superuser_url=URL.create(
                "postgresql+psycopg2", username="postgres", host=LOCALHOST, port=port, database="tls_db"
            ),
        )
        yield DebianPostgres(
            version=target.version, target=target, root_cert=cert, wrong_root_cert=wrong_cert,
            log_path=log_path,
        )
    finally:
        with contextlib.suppress(RuntimeError):
            run(str(bin_dir / "pg_ctl"), f"--pgdata={pgdata}", "--mode=fast", "--wait", "stop")
        shutil.rmtree(workdir, ignore_errors=True)

