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


@dataclass(frozen=True)
class DebianClusters:
    """Debian's PostgreSQL programs, run in ``workdir`` as the ``postgres`` system user when we are
    root (initdb refuses root); the clusters' data directories live in ``workdir``."""

    bin_dir: Path
    workdir: Path
    as_root: bool

    @property
    def version(self) -> int:
        return int(self.bin_dir.parent.name)

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        run_as = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        result = subprocess.run([*run_as, *command], capture_output=True, text=True, check=False, cwd=self.workdir)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def initdb(self, pgdata: Path, port: int, **settings: str) -> None:
        """A cluster on 127.0.0.1:`port`, its socket in `workdir`, without fsync, plus `settings`;
        the superuser may connect over TCP without a password (the fixtures only), every other
        role needs one."""
        self.run("initdb", f"--pgdata={pgdata}", "--username=postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        self.configure(pgdata, port, **settings)
        hba = pgdata / "pg_hba.conf"
        hba.write_text(f"host all postgres {LOCALHOST}/32 trust\n" + hba.read_text())

    def configure(self, pgdata: Path, port: int, **settings: str) -> None:
        conf = {
            "port": str(port), "listen_addresses": f"'{LOCALHOST}'", "unix_socket_directories": f"'{self.workdir}'",
            "fsync": "off", **settings,
        }  # fmt: skip
        with (pgdata / "postgresql.conf").open("a") as handle:
            handle.write("".join(f"{k} = {v}\n" for k, v in conf.items()))

    def start(self, pgdata: Path, log: Path) -> None:
        self.run("pg_ctl", f"--pgdata={pgdata}", f"--log={log}", "--wait", "start")

    def stop(self, pgdata: Path) -> None:
        with contextlib.suppress(RuntimeError):
            self.run("pg_ctl", f"--pgdata={pgdata}", "--mode=fast", "--wait", "stop")


def debian_clusters(prefix: str) -> DebianClusters:
    """Debian's programs and a new work directory (removed by the caller).

    Skips only when the server is not installed and we are not root; as root (CI) a missing
    server is an error, since scripts/test.sh installs it.
    """
    bin_dir = _debian_bin_dir()
    as_root = os.geteuid() == 0
    if bin_dir is None:
        if as_root:
            pytest.fail(DEBIAN_INSTALL_HINT)
        pytest.skip(DEBIAN_INSTALL_HINT)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(workdir, 0o755)
    if as_root:
        shutil.chown(workdir, "postgres", "postgres")
    return DebianClusters(bin_dir=bin_dir, workdir=workdir, as_root=as_root)


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
    """Debian's PostgreSQL, started on a free port as the ``postgres`` system user (when root)."""
    clusters = debian_clusters("dpc-debian-pg-")
    workdir = clusters.workdir
    pgdata = workdir / "pgdata"
    try:
        if shutil.which("openssl") is None:
            pytest.fail("`openssl` is needed to make the test certificate: `apt-get install -y openssl`.")
        key, cert = _self_signed_certificate(workdir, "server")
        _, wrong_cert = _self_signed_certificate(workdir, "other")
        if clusters.as_root:
            for path in (key, cert):
                shutil.chown(path, "postgres", "postgres")
        key.chmod(0o600)
        port = find_free_port()
        clusters.initdb(
            pgdata, port, ssl="on", ssl_cert_file=f"'{cert}'", ssl_key_file=f"'{key}'", log_connections="on",
            # for the query history tests (catalog/test_query_history.py); inert until CREATE EXTENSION
            shared_preload_libraries="'pg_stat_statements'",
        )
        log_path = workdir / "postgres.log"
        clusters.start(pgdata, log_path)
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
            version=clusters.version, host=LOCALHOST, port=port, socket_dir=workdir,
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
        clusters.stop(pgdata)  # a cluster that never started: pg_ctl's error is suppressed
        shutil.rmtree(workdir, ignore_errors=True)
