"""Table health on the sync's events: scans (the sync's own counts left out), live and dead
tuples, and vacuum/analyze times, from the statistics statement the sync already sends."""

import time
from pathlib import Path

import dagster as dg
from dagster_shared.record import copy

from dagster_postgres_connection.observe.health import PostgresTableHealth, health_moved
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.observe.conftest import (
    build_defs,
    data_events,
    run_job,
    summary,
)
from dagster_postgres_connection_tests.utils import PgTarget

NS = "dagster-postgres-connection"

# autovacuum off on these: its timing must not decide what the test sees.
TABLES = """
CREATE TABLE public.orders (id int PRIMARY KEY, status text) WITH (autovacuum_enabled = false);
INSERT INTO public.orders SELECT g, 'new' FROM generate_series(1, 1000) g;
DELETE FROM public.orders WHERE id <= 300;
-- no index: building one scans the table
CREATE TABLE public.write_only_log (at timestamptz, line text) WITH (autovacuum_enabled = false);
INSERT INTO public.write_only_log SELECT now(), 'x' FROM generate_series(1, 10) g;
CREATE TABLE public.scanned_by_status (id int PRIMARY KEY, status text) WITH (autovacuum_enabled = false);
INSERT INTO public.scanned_by_status SELECT g, 'new' FROM generate_series(1, 50) g;
"""


def scans(server: EmbeddedPostgres, target: PgTarget, table: str) -> tuple[int, int, int]:
    (row,) = server.query(
        "SELECT seq_scan, COALESCE(idx_scan, 0), n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
        [table],
        database=target.database,
    )
    return row


def wait_until(condition, what: str) -> None:
    """Statistics reach shared memory when the backend flushes them (at its exit, or up to a
    second after its transaction)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"statistics never showed {what}")


def values(event: dg.AssetObservation | dg.AssetMaterialization) -> dict[str, object]:
    return {key.removeprefix(f"{NS}/"): value.value for key, value in event.metadata.items()}


def test_health_after_scans_vacuum_and_analyze(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(TABLES, db.database)
    # read sequentially by someone else (not indexed column), before the first sync
    pagila_server.execute("SELECT count(*) FROM public.scanned_by_status WHERE status = 'x'", db.database)
    wait_until(lambda: scans(pagila_server, db, "orders")[2] == 300, "300 dead tuples in orders")
    wait_until(lambda: scans(pagila_server, db, "scanned_by_status")[0] >= 1, "a scan of scanned_by_status")
    defs = build_defs(db, tmp_path / "snapshot")

    first = run_job(defs, instance)
    assert first.success
    events = data_events(first)
    orders = values(events["orders"])
    assert (orders["live_tuples"], orders["dead_tuples"], orders["dead_tuple_ratio"]) == (700, 300, 0.3)
    assert not {"last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"} & set(orders)
    assert orders["unused"] is False  # the DELETE scanned it to find its rows
    status = values(events["scanned_by_status"])
    assert (status["unused"], status["never_index_scanned"], status["index_scans"]) == (False, True, 0)
    assert status["sequential_scans"] >= 1
    log = values(events["write_only_log"])
    assert (log["unused"], log["sequential_scans"]) == (True, 0)  # inserts scan nothing
    assert not {"index_scans", "never_index_scanned"} & set(log)  # no index

    # The first sync counted every table (count(*)): those scans are its own, not use.
    wait_until(lambda: scans(pagila_server, db, "write_only_log")[0] + scans(pagila_server, db, "write_only_log")[1] >= 1,
               "the sync's own count of write_only_log")
    before_maintenance = time.time()
    pagila_server.execute("VACUUM public.orders", db.database)
    pagila_server.execute("ANALYZE public.orders", db.database)
    pagila_server.execute("SET enable_seqscan = off; SELECT status FROM public.orders WHERE id = 500", db.database)
    wait_until(lambda: scans(pagila_server, db, "orders")[1] >= 1 and scans(pagila_server, db, "orders")[2] == 0,
               "the index scan and the vacuum of orders")

    second = run_job(defs, instance)
    assert second.success
    events = data_events(second)
    # Only the vacuumed and analyzed table is reported: its data did not change, its health did.
    # The tables the first sync counted did not become "used" by it.
    assert set(events) == {"orders"}
    orders = values(events["orders"])
    assert orders["data_changed"] is False
    assert before_maintenance <= orders["last_vacuum"] <= time.time()
    assert before_maintenance <= orders["last_analyze"] <= time.time()
    assert (orders["live_tuples"], orders["dead_tuples"], orders["dead_tuple_ratio"]) == (700, 0, 0.0)
    assert orders["index_scans"] >= 1 and orders["unused"] is False and orders["never_index_scanned"] is False
    third = run_job(defs, instance)
    assert third.success and data_events(third) == {}  # nothing moved: nothing reported


def test_health_rides_on_the_observation_of_changed_data(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot")
    assert run_job(defs, instance).success
    ((deleted,),) = pagila_server.query("SELECT count(*) FROM public.film_actor WHERE film_id <= 10", database=db.database)
    pagila_server.execute("DELETE FROM public.film_actor WHERE film_id <= 10", db.database)
    wait_until(lambda: scans(pagila_server, db, "film_actor")[2] == deleted, f"{deleted} dead tuples in film_actor")

    film_actor = values(data_events(run_job(defs, instance))["film_actor"])
    assert film_actor["data_changed"] is True
    assert film_actor["dead_tuples"] == deleted > 0
    assert film_actor["dead_tuple_ratio"] == round(deleted / (film_actor["live_tuples"] + deleted), 4)


def test_health_sends_no_statement_of_its_own(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """A quiet sync sends as many statements with 30 more tables, each reporting its health."""
    defs = build_defs(db, tmp_path / "snapshot")
    assert run_job(defs, instance).success
    quiet = run_job(defs, instance)
    assert data_events(quiet) == {}

    pagila_server.execute(
        "".join(
            f"CREATE TABLE public.extra_{i} (id int PRIMARY KEY) WITH (autovacuum_enabled = false);"
            f"INSERT INTO public.extra_{i} SELECT generate_series(1, {i + 1});"
            for i in range(30)
        ),
        db.database,
    )
    wait_until(lambda: scans(pagila_server, db, "extra_29")[0] >= 1, "the statistics of the new tables")
    assert run_job(defs, instance).success  # reads the catalog: new relations, assets at the next load
    defs = build_defs(db, tmp_path / "snapshot")
    events = data_events(run_job(defs, instance))  # their first report
    assert all(values(events[f"extra_{i}"])["live_tuples"] == i + 1 for i in range(30))
    quiet_again = run_job(defs, instance)
    assert data_events(quiet_again) == {}
    assert summary(quiet_again)["statements"] == summary(quiet)["statements"]


def test_what_makes_health_worth_an_event() -> None:
    """Maintenance and use flips report; scan counts alone do not; statistics kept by an earlier
    version (no health yet) are no baseline, so upgrading does not report every table once."""
    base = PostgresTableHealth(sequential_scans=3, index_scans=0, scans_by_others=3, last_analyze=1.0)
    assert not health_moved(base, copy(base, sequential_scans=40, scans_by_others=40))
    assert health_moved(base, copy(base, last_autovacuum=2.0))
    assert health_moved(base, copy(base, index_scans=1))  # no longer "never index-scanned"
    assert health_moved(copy(base, scans_by_others=0), base)  # became used
    assert not health_moved(None, base)
    assert (base.unused, base.never_index_scanned, copy(base, index_scans=None).never_index_scanned) == (False, True, None)
