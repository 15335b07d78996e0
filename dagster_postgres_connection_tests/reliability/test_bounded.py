"""Bounded: other sessions' locks and slow catalog queries end within the configured time.

(The connect timeout against a server that never answers is in `test_connection_failures.py`.)
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

import pytest

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.reliability.conftest import SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget


@contextlib.contextmanager
def holding_lock(server: EmbeddedPostgres, database: str, statement: str) -> Iterator[None]:
    """Another session takes a lock and keeps its transaction open until the block ends."""
    with server.connect(database) as conn:
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute(statement)
        try:
            yield
        finally:
            conn.rollback()


def _blocked(server: EmbeddedPostgres) -> list[tuple[object, ...]]:
    """Sessions of ours that waited on a lock (should be none left once a sync returns)."""
    return server.query(
        "SELECT pid, wait_event_type FROM pg_stat_activity "
        "WHERE application_name = 'dagster-postgres-connection' AND wait_event_type = 'Lock'"
    )


@pytest.mark.parametrize(
    "relation, lock",
    [
        ("public.film", "LOCK TABLE public.film IN ACCESS EXCLUSIVE MODE"),
        ("public.customer", "ALTER TABLE public.customer ADD COLUMN uncommitted int"),
        ("public.actor_info", "LOCK TABLE public.actor_info IN ACCESS EXCLUSIVE MODE"),
        ("public.rental_by_category", "REFRESH MATERIALIZED VIEW public.rental_by_category"),
        ("public.payment", "LOCK TABLE public.payment IN ACCESS EXCLUSIVE MODE"),
    ],
    ids=["table", "alter-table", "view", "materialized-view", "partitioned-table"],
)
def test_a_relation_locked_access_exclusive_never_blocks_the_catalog_pass(
    pagila_server: EmbeddedPostgres,
    fresh_database: Callable[..., PgTarget],
    make_settings: SettingsFactory,
    caplog: pytest.LogCaptureFixture,
    relation: str,
    lock: str,
) -> None:
    """The catalog pass never waits: what would (deparsing a view, a default, an index) is skipped."""
    target = fresh_database()
    # A policy's expression is deparsed too (LIST_POLICIES): left out for a locked table only.
    pagila_server.execute("CREATE POLICY lock_probe ON public.film USING (film_id > 0)", target.database)
    settings = make_settings(target, lock_timeout_seconds=5, statement_timeout_seconds=10)
    with holding_lock(pagila_server, target.database, lock), caplog.at_level(logging.WARNING):
        started = time.monotonic()
        snapshot = read_catalog(settings)
        elapsed = time.monotonic() - started
    assert elapsed < 3, f"the sync waited {elapsed:.1f} s on the lock"
    assert not snapshot.skipped
    schema, name = relation.split(".")
    locked = snapshot.relations_by_key()[(target.database, schema, name)]
    assert locked.columns, "the locked relation was synced without its columns"
    assert "uncommitted" not in [c.name for c in locked.columns]
    assert any(f"`{target.database}.{relation}`" in r.getMessage() and "locked ACCESS EXCLUSIVE" in r.getMessage()
               for r in caplog.records)
    # A view reading none of the locked relations keeps its definition.
    assert snapshot.relations_by_key()[(target.database, "public", "staff_list")].view_definition
    # (LOCK TABLE on a view locks what it reads too: actor_info reads film.)
    film_locked = relation in ("public.film", "public.actor_info")
    (policy,) = snapshot.relations_by_key()[(target.database, "public", "film")].policies
    assert (policy.name, policy.using) == ("lock_probe", None if film_locked else "(film_id > 0)")


@pytest.fixture(name="two_databases")
def two_databases_fixture(fresh_database: Callable[..., PgTarget]) -> tuple[PgTarget, PgTarget]:
    return fresh_database(), fresh_database()


@pytest.mark.parametrize(
    "timeouts, ended_by, setting",
    [
        ({"lock_timeout_seconds": 1, "statement_timeout_seconds": 30}, "lock timeout", "lock_timeout_seconds=1"),
        # a slow catalog query: the lock may be waited on for longer than the statement may run
        ({"lock_timeout_seconds": 60, "statement_timeout_seconds": 1}, "statement timeout", "statement_timeout_seconds=1"),
    ],
    ids=["lock_timeout", "statement_timeout"],
)
def test_a_timeout_ends_a_blocked_catalog_read_and_the_rest_syncs(
    pagila_server: EmbeddedPostgres,
    two_databases: tuple[PgTarget, PgTarget],
    make_settings: SettingsFactory,
    caplog: pytest.LogCaptureFixture,
    timeouts: dict[str, int],
    ended_by: str,
    setting: str,
) -> None:
    """Locks `pg_description` (read by every comment lookup) in the first database only."""
    blocked, healthy = two_databases
    settings = make_settings(blocked, databases=[blocked.database, healthy.database], **timeouts)
    with holding_lock(pagila_server, blocked.database, "LOCK TABLE pg_catalog.pg_description IN ACCESS EXCLUSIVE MODE"):
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            snapshot = read_catalog(settings)
        elapsed = time.monotonic() - started
        assert not _blocked(pagila_server)
    assert [d.name for d in snapshot.databases] == [healthy.database]
    assert len(snapshot.databases[0].relations) > 20
    assert [s.label for s in snapshot.skipped] == [blocked.database]
    assert elapsed < 4, elapsed
    reason = snapshot.skipped[0].reason
    assert ended_by in reason and setting in reason, reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(blocked.database in w and ended_by in w for w in warnings), warnings
