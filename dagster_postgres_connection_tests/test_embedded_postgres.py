"""The test infrastructure itself: embedded servers, Pagila, the read-only role, passwords."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2.errors
import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from dagster_postgres_connection.testing import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    find_free_port,
)
from dagster_postgres_connection.testing.embedded_postgres import _pid_alive
from dagster_postgres_connection_tests.conftest import (
    PAGILA_TEMPLATE,
    READER_ROLE,
)
from dagster_postgres_connection_tests.utils import PgTarget, count_statements

PAGILA_TABLES = {
    "actor", "address", "category", "city", "country", "customer", "film", "film_actor",
    "film_category", "inventory", "language", "payment", "rental", "staff", "store",
}  # fmt: skip
PAGILA_VIEWS = {
    "actor_info", "customer_list", "film_list", "nicer_but_slower_film_list",
    "sales_by_film_category", "sales_by_store", "staff_list",
}  # fmt: skip
PAGILA_ROW_COUNTS = {
    "film": 1000, "actor": 200, "customer": 599, "rental": 16044, "payment": 16049,
    "inventory": 4581, "film_actor": 5462, "rental_by_category": 16,
}  # fmt: skip


@pytest.fixture(name="engine_factory")
def engine_factory_fixture() -> Iterator[Callable[[sa.URL], sa.Engine]]:
    engines: list[sa.Engine] = []

    def make(url: sa.URL) -> sa.Engine:
        engines.append(sa.create_engine(url, poolclass=sa.NullPool))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def scalar(engine: sa.Engine, statement: str) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(statement)).scalar()


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp", "socket"])
def test_server_answers_on_tcp_and_socket(
    pg_server: EmbeddedPostgres, tcp: bool, engine_factory: Callable[[sa.URL], sa.Engine]
) -> None:
    engine = engine_factory(pg_server.url(tcp=tcp))
    with engine.connect() as conn:
        version = conn.execute(sa.text("select version()")).scalar_one()
        # inet_server_addr() is NULL on a unix socket: proves which route was taken.
        address = conn.execute(sa.text("select host(inet_server_addr())")).scalar()
    assert version.startswith(f"PostgreSQL {pg_server.version}.")
    assert address == ("127.0.0.1" if tcp else None)
    assert (pg_server.socket_dir / f".s.PGSQL.{pg_server.port}").is_socket()


def test_pagila_relations(pagila: PgTarget, engine_factory: Callable[[sa.URL], sa.Engine]) -> None:
    engine = engine_factory(pagila.superuser_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select c.relname, c.relkind, c.relispartition, c.relispopulated"
                " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')"
            )
        ).all()
        partitions = conn.execute(
            sa.text("select count(*) from pg_inherits where inhparent = 'public.payment'::regclass")
        ).scalar_one()
    by_kind: dict[str, set[str]] = {}
    for name, kind, is_partition, _ in rows:
        by_kind.setdefault("partition" if is_partition else kind, set()).add(name)
    assert by_kind["r"] | by_kind["p"] == PAGILA_TABLES
    assert by_kind["p"] == {"payment"}
    assert by_kind["partition"] == {f"payment_p2022_0{month}" for month in range(1, 8)}
    assert partitions == 7
    assert by_kind["v"] == PAGILA_VIEWS
    assert by_kind["m"] == {"rental_by_category"}
    assert all(populated for *_, populated in rows)  # the matview was refreshed


def test_pagila_row_counts_as_reader(
    pagila: PgTarget, engine_factory: Callable[[sa.URL], sa.Engine]
) -> None:
    engine = engine_factory(pagila.url())
    with engine.connect() as conn:
        counts = {
            table: conn.execute(sa.text(f"select count(*) from public.{table}")).scalar_one()
            for table in PAGILA_ROW_COUNTS
        }
        # GRANT SELECT ON ALL SEQUENCES is part of the recipe.
        last_film_id = conn.execute(sa.text("select last_value from film_film_id_seq")).scalar()
    assert counts == PAGILA_ROW_COUNTS
    assert last_film_id == 1000


def test_pagila_is_analyzed(
    pagila: PgTarget, engine_factory: Callable[[sa.URL], sa.Engine]
) -> None:
    engine = engine_factory(pagila.superuser_url)
    assert (
        scalar(engine, "select reltuples::int from pg_class where oid = 'film'::regclass") == 1000
    )


def test_reader_cannot_write(
    pagila: PgTarget, engine_factory: Callable[[sa.URL], sa.Engine]
) -> None:
    engine = engine_factory(pagila.url())
    statements = {
        "language": "insert into language (name) values ('Klingon')",
        "film": "update film set rental_rate = 0",
        "payment": "delete from payment",
    }
    for table, statement in statements.items():
        with pytest.raises(sa_exc.ProgrammingError) as raised, engine.begin() as conn:
            conn.execute(sa.text(statement))
        assert isinstance(raised.value.orig, psycopg2.errors.InsufficientPrivilege)
        assert f"permission denied for table {table}" in str(raised.value)
    # Note: Pagila's dump itself runs GRANT ALL ON SCHEMA public TO PUBLIC, so any role,
    # this one included, may CREATE tables in `public`; the recipe does not take that away.


def test_reader_sees_tables_created_later(
    fresh_database: Callable[..., PgTarget], engine_factory: Callable[[sa.URL], sa.Engine]
) -> None:
    target = fresh_database()
    with engine_factory(target.superuser_url).begin() as conn:
        conn.execute(
            sa.text("create table public.added_later (id int); insert into added_later values (7)")
        )
    # ALTER DEFAULT PRIVILEGES from the recipe, copied with the template.
    assert scalar(engine_factory(target.url()), "select id from public.added_later") == 7


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp", "socket"])
@pytest.mark.parametrize("password", ["wrong", ""], ids=["wrong", "empty"])
def test_wrong_password_fails(
    pagila: PgTarget, tcp: bool, password: str, engine_factory: Callable[[sa.URL], sa.Engine]
) -> None:
    with pytest.raises(sa_exc.OperationalError) as raised:
        scalar(engine_factory(pagila.url(tcp=tcp, password=password)), "select 1")
    message = str(raised.value)
    assert (
        f'password authentication failed for user "{READER_ROLE}"' in message
        or "no password supplied" in message
    )
    assert scalar(engine_factory(pagila.url(tcp=tcp)), "select current_user") == READER_ROLE


def test_superuser_stays_trusted(
    pagila_server: EmbeddedPostgres, engine_factory: Callable[[sa.URL], sa.Engine]
) -> None:
    for tcp in (True, False):
        url = pagila_server.url("pagila", password="anything", tcp=tcp)
        assert scalar(engine_factory(url), "select current_user") == "postgres"


def test_template_is_protected(pagila_server: EmbeddedPostgres) -> None:
    rows = pagila_server.query(
        "select datistemplate, datallowconn from pg_database where datname = %s",
        [PAGILA_TEMPLATE],
    )
    assert rows == [(True, False)]


def test_fresh_database_is_a_private_copy(
    pagila: PgTarget,
    pagila_server: EmbeddedPostgres,
    fresh_database: Callable[..., PgTarget],
    engine_factory: Callable[[sa.URL], sa.Engine],
) -> None:
    target = fresh_database("fresh_private_copy")
    assert target.database == "fresh_private_copy"
    with engine_factory(target.superuser_url).begin() as conn:
        conn.execute(sa.text("drop table film cascade"))
    assert scalar(engine_factory(target.url()), "select count(*) from actor") == 200
    assert scalar(engine_factory(pagila.url()), "select count(*) from film") == 1000


def test_fresh_database_is_dropped(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget]
) -> None:
    # Relies on the previous test: its database must be gone by now.
    assert not pagila_server.database_exists("fresh_private_copy")
    assert pagila_server.database_exists(fresh_database().database)


def test_psql_file_fails_loudly(pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    script = tmp_path / "bad.sql"
    script.write_text("SET transaction_timeout = 0;\nselect 1;\nselect * from no_such_table;\n")
    with pytest.raises(EmbeddedPostgresError, match='relation "no_such_table" does not exist'):
        pg_server.psql_file(script, "postgres")


def test_psql_file_tolerates_only_the_pg17_setting(
    pg_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    pg_server.execute("drop table if exists psql_probe")
    script = tmp_path / "ok.sql"
    script.write_text(
        "SET transaction_timeout = 0;\nSET statement_timeout = 0;\n"
        "create table psql_probe (id int);\ninsert into psql_probe values (1), (2);\n"
    )
    pg_server.psql_file(script, "postgres")
    assert pg_server.query("select count(*) from psql_probe") == [(2,)]
    pg_server.execute("drop table psql_probe")


def test_count_statements(pagila: PgTarget, engine_factory: Callable[[sa.URL], sa.Engine]) -> None:
    engine = engine_factory(pagila.url())
    with count_statements(engine) as counter, engine.connect() as conn:
        conn.execute(sa.text("select 1"))
        conn.execute(sa.text("select count(*) from film"))
    assert counter.statements == ["select 1", "select count(*) from film"]
    with engine.connect() as conn:
        conn.execute(sa.text("select 2"))
    assert counter.count == 2  # the listener is gone after the block


def test_find_free_port_is_bindable() -> None:
    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def _first_version() -> int:
    return int(os.environ.get("DPC_PG_VERSIONS", "18").replace(",", " ").split()[0])


@pytest.mark.slow
def test_persistent_server_is_reused() -> None:
    # Not pytest's tmp_path: its 0700 parents would need loosening for the server user.
    parent = Path(tempfile.mkdtemp(prefix="dpc-test-persistent-"))
    data_dir = parent / "pg"
    port = find_free_port()
    first = EmbeddedPostgres(data_dir, version=_first_version(), port=port, persistent=True)
    try:
        first.start()
        started = first.query("select pg_postmaster_start_time()")
        second = EmbeddedPostgres(data_dir, version=_first_version(), persistent=True).start()
        assert second.reused and second.port == port
        assert second.query("select pg_postmaster_start_time()") == started
        with pytest.raises(EmbeddedPostgresError, match="holds a PostgreSQL"):
            other = 16 if _first_version() == 18 else 18
            EmbeddedPostgres(data_dir, version=other, persistent=True).start()
    finally:
        first.stop()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    assert data_dir.exists()  # a given data_dir is never deleted
    first.stop()  # idempotent
    shutil.rmtree(parent)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("launcher", ["plain", "signals-ignored"])
def test_server_dies_with_its_owner(sig: signal.Signals, launcher: str) -> None:
    """A killed pytest must not leave a server (and its files) behind: the watchdog's job.

    `signals-ignored` is pytest as a background job or CI wrapper starts it: SIGINT ignored,
    and SIGTERM too once Dagster has mapped it to SIGINT's handler (`setup_interrupt_handlers`),
    both inherited by every child. The owner stands for a program run normally, so it restores
    the default handlers it would have had.
    """
    ignored = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in ignored}
    if launcher == "signals-ignored":
        for s in ignored:
            signal.signal(s, signal.SIG_IGN)
    try:
        owner = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(
                    f"""
                    import signal, time
                    for s in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(s, signal.SIG_DFL)
                    from dagster_postgres_connection.testing import EmbeddedPostgres
                    pg = EmbeddedPostgres(version={_first_version()}).start()
                    print(pg.data_dir, flush=True)
                    time.sleep(120)
                    """
                ),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert owner.stdout is not None
    data_dir = Path(owner.stdout.readline().strip())
    pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    owner.send_signal(sig)
    owner.wait(timeout=10)
    deadline = time.monotonic() + 15
    while (data_dir.exists() or _pid_alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pid_alive(pid), "the server outlived its owner"
    assert not data_dir.exists(), "the temporary data folder outlived its owner"
