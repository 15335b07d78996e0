"""Volume: 20+ databases on one server sync with at most `max_concurrent_connections` sessions
open at once (default 4), one connection per database, never one per table.
"""

import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool

from dagster_postgres_connection.catalog.connection import APPLICATION_NAME
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.reliability.conftest import SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget

DATABASES = 22


class ConnectionGauge:
    """Client side: DBAPI connections our engines open and close (SQLAlchemy pool events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = self.peak = self.opened = 0

    def connected(self, *_: object) -> None:
        with self._lock:
            self.open += 1
            self.opened += 1
            self.peak = max(self.peak, self.open)

    def closed(self, *_: object) -> None:
        with self._lock:
            self.open -= 1


class SessionSampler:
    """Server side: our sessions in pg_stat_activity, sampled from another connection.

    Only sessions inside a transaction on these databases count: a backend whose client has
    just closed lingers a few milliseconds as `idle`, next to its successor.
    """

    def __init__(self, server: EmbeddedPostgres, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-sampler", daemon=True)

    def _run(self) -> None:
        with self.server.connect() as conn, conn.cursor() as cur:
            while not self._stop.is_set():
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname LIKE %s"
                    " AND state IN ('active', 'idle in transaction')",
                    [APPLICATION_NAME, f"{self.prefix}%"],
                )
                self.peak = max(self.peak, cur.fetchone()[0])
                self.samples += 1

    def __enter__(self) -> "SessionSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture(name="gauge")
def gauge_fixture() -> Iterator[ConnectionGauge]:
    gauge = ConnectionGauge()
    event.listen(Pool, "connect", gauge.connected)
    event.listen(Pool, "close", gauge.closed)
    yield gauge
    event.remove(Pool, "connect", gauge.connected)
    event.remove(Pool, "close", gauge.closed)


# A small schema per database: the point is the number of databases, not their size.
SCHEMA = """
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers (id), total numeric);
    CREATE TABLE order_lines (order_id int REFERENCES orders (id), line int, sku text, PRIMARY KEY (order_id, line));
    CREATE VIEW order_totals AS SELECT o.id, sum(1) AS lines FROM orders o JOIN order_lines l ON l.order_id = o.id GROUP BY o.id;
    CREATE MATERIALIZED VIEW customer_orders AS SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO dagster_reader;
"""
RELATIONS_PER_DATABASE = 5


@pytest.fixture(name="many_databases", scope="module")
def many_databases_fixture(pagila_server: EmbeddedPostgres) -> Iterator[list[PgTarget]]:
    from dagster_postgres_connection_tests.conftest import make_target

    prefix = f"many_{secrets.token_hex(3)}"
    names = [f"{prefix}_{i:02d}" for i in range(DATABASES)]
    for name in names:
        pagila_server.create_database(name)
        pagila_server.execute(SCHEMA, name)
    try:
        yield [make_target(pagila_server, name) for name in names]
    finally:
        for name in names:
            pagila_server.drop_database(name)


def _sync(
    server: EmbeddedPostgres, settings: PostgresConnectionSettings, gauge: ConnectionGauge, prefix: str
) -> tuple[float, int, int]:
    with SessionSampler(server, prefix) as sampler:
        started = time.monotonic()
        snapshot = read_catalog(settings)
        elapsed = time.monotonic() - started
    assert gauge.open == 0, "connections left open after the sync"
    assert not snapshot.skipped
    assert len(snapshot.databases) == DATABASES
    assert all(len(database.relations) == RELATIONS_PER_DATABASE for database in snapshot.databases)
    assert sampler.samples > 10
    # Shown with `pytest -s`: the numbers quoted in FAULTS.md.
    print(f"{len(snapshot.databases)} databases in {elapsed:.2f} s; peak sessions: {sampler.peak} in "
          f"pg_stat_activity ({sampler.samples} samples), {gauge.peak} client-side; {gauge.opened} opened")
    return elapsed, sampler.peak, gauge.peak


@pytest.mark.parametrize("limit", [None, 2], ids=["default-4", "limit-2"])
def test_many_databases_never_exceed_the_connection_limit(
    pagila_server: EmbeddedPostgres,
    many_databases: list[PgTarget],
    make_settings: SettingsFactory,
    gauge: ConnectionGauge,
    limit: int | None,
) -> None:
    overrides = {} if limit is None else {"max_concurrent_connections": limit}
    settings = make_settings(
        many_databases[0], databases=[target.database for target in many_databases], **overrides
    )
    expected_limit = settings.max_concurrent_connections
    prefix = many_databases[0].database.rsplit("_", 1)[0]
    elapsed, server_peak, client_peak = _sync(pagila_server, settings, gauge, prefix)
    assert client_peak <= expected_limit and server_peak <= expected_limit, (client_peak, server_peak)
    assert client_peak == expected_limit, "databases were not read concurrently"
    assert gauge.opened == DATABASES  # one connection per database, however many tables
    assert elapsed < DATABASES * settings.statement_timeout_seconds


def test_listing_the_databases_adds_one_connection(
    pagila_server: EmbeddedPostgres,
    many_databases: list[PgTarget],
    make_settings: SettingsFactory,
    gauge: ConnectionGauge,
) -> None:
    prefix = many_databases[0].database.rsplit("_", 1)[0]
    settings = make_settings(many_databases[0], databases=None, filters={"databases": {"include": [f"{prefix}_.*"]}})
    _, server_peak, client_peak = _sync(pagila_server, settings, gauge, prefix)
    assert max(server_peak, client_peak) <= 4
    assert gauge.opened == DATABASES + 1
