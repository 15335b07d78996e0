"""A primary and a streaming standby of Debian's PostgreSQL, for the change detection tests.

The primary is a throwaway cluster (``initdb``, replication allowed from 127.0.0.1 for the
superuser only); the standby is made by ``pg_basebackup -R`` from it and started in hot standby,
streaming. The read-only role connects to the standby with a password, as users point a
read-only role at a replica. As root (CI) every command runs as the ``postgres`` system user,
like ``debian_postgres.py``.
"""

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import URL

from dagster_postgres_connection.testing import LOCALHOST, find_free_port
from dagster_postgres_connection_tests.debian_postgres import debian_clusters
from dagster_postgres_connection_tests.utils import PgTarget

DATABASE = "replicated_db"
READER = "standby_reader"
READER_PASSWORD = "standby-Reader-pw!"


@dataclass(frozen=True)
class PrimaryAndStandby:
    primary_port: int
    standby: PgTarget  # the read-only role on the standby

    def primary_execute(self, statement: str) -> None:
        """Runs `statement` on the primary as the superuser, then waits until the standby replayed it."""
        with contextlib.closing(
            psycopg2.connect(host=LOCALHOST, port=self.primary_port, user="postgres", dbname=DATABASE)
        ) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
                cur.execute("SELECT pg_current_wal_lsn()")
                (lsn,) = cur.fetchone() or (None,)
        self.wait_for_replay(str(lsn))

    def wait_for_replay(self, lsn: str) -> None:
        deadline = time.monotonic() + 30
        with contextlib.closing(
            psycopg2.connect(host=LOCALHOST, port=self.standby.port, user="postgres", dbname=DATABASE)
        ) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                while time.monotonic() < deadline:
                    cur.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
                    if (cur.fetchone() or (False,))[0]:
                        return
                    time.sleep(0.1)
        raise AssertionError(f"the standby did not replay up to {lsn} within 30 s")


@pytest.fixture(name="primary_and_standby", scope="module")
def primary_and_standby_fixture() -> Iterator[PrimaryAndStandby]:
    clusters = debian_clusters("dpc-standby-")
    primary, standby = clusters.workdir / "primary", clusters.workdir / "standby"
    primary_port, standby_port = find_free_port(), find_free_port()
    started: list[Path] = []
    try:
        clusters.initdb(primary, primary_port)
        # Replication too, for the superuser over TCP without a password (fixture only).
        hba = primary / "pg_hba.conf"
        hba.write_text(f"host replication postgres {LOCALHOST}/32 trust\n" + hba.read_text())
        clusters.start(primary, clusters.workdir / "primary.log")
        started.append(primary)
        with contextlib.closing(psycopg2.connect(host=LOCALHOST, port=primary_port, user="postgres", dbname="postgres")) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"CREATE ROLE {READER} LOGIN PASSWORD %s", [READER_PASSWORD])
                cur.execute(f"CREATE DATABASE {DATABASE}")
        with contextlib.closing(psycopg2.connect(host=LOCALHOST, port=primary_port, user="postgres", dbname=DATABASE)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE public.orders (id serial PRIMARY KEY, total numeric)")
                cur.execute("CREATE TABLE public.customers (id serial PRIMARY KEY, name text)")
                cur.execute("CREATE VIEW public.order_totals AS SELECT sum(total) AS total FROM public.orders")
                cur.execute("INSERT INTO public.orders (total) SELECT i FROM generate_series(1, 10) i")
                cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}")
        clusters.run("pg_basebackup", "-h", LOCALHOST, "-p", str(primary_port), "-U", "postgres",
                     "-D", str(standby), "-R", "-X", "stream", "--no-sync")  # fmt: skip
        (standby / "postmaster.pid").unlink(missing_ok=True)
        clusters.configure(standby, standby_port)
        clusters.start(standby, clusters.workdir / "standby.log")
        started.append(standby)
        target = PgTarget(
            version=clusters.version, host=LOCALHOST, port=standby_port, socket_dir=clusters.workdir,
            database=DATABASE, user=READER, password=READER_PASSWORD,
            superuser_url=URL.create("postgresql+psycopg2", username="postgres", host=LOCALHOST, port=standby_port, database=DATABASE),
        )  # fmt: skip
        yield PrimaryAndStandby(primary_port=primary_port, standby=target)
    finally:
        for pgdata in reversed(started):
            clusters.stop(pgdata)
        shutil.rmtree(clusters.workdir, ignore_errors=True)
