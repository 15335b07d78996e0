"""Debian's PostgreSQL with TLS, postgres_fdw and pg_stat_statements, which the bundled servers lack.

One session-wide server, shared by the TLS/secrets tests and the postgres_fdw test; registered
in the top-level conftest.py so that it starts once.
"""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import URL

from dagster_postgres_connection.testing import LOCALHOST, find_free_port
from dagster_postgres_connection_tests.utils import PgTarget

DEBIAN_INSTALL_HINT = (
    "Debian's PostgreSQL server is needed for the TLS tests: `apt-get install -y postgresql` "
    "(scripts/test.sh does it when run as root)."
)
TLS_SERVER_NAME = "dpc-tls-test-server"  # the certificate's CN: deliberately not 127.0.0.1


@dataclass(frozen=True)
class DebianPostgres:
    """A Debian PostgreSQL server with ``ssl = on`` and a self-signed certificate, and
    pg_stat_statements in ``shared_preload_libraries``.

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
        # for the query history tests (catalog/test_query_history.py); inert until CREATE EXTENSION
        "shared_preload_libraries": "'pg_stat_statements'",
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

