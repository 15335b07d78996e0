"""The sync job on real Pagila: row counts, sizes, last-update times, and what it keeps."""

import time
from pathlib import Path

import dagster as dg

from dagster_postgres_connection.catalog.state import load_snapshot
from dagster_postgres_connection.observe.state import load_statistics, statistics_path
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.observe.conftest import (
    SYNC_JOB,
    build_defs,
    check_evaluations,
    data_events,
    run_job,
    summary,
    wait_for_changes,
)
from dagster_postgres_connection_tests.utils import PgTarget

PAGILA_ROW_COUNTS = {"actor": 200, "film": 1000, "language": 6, "category": 16, "rental": 16044}


def test_first_sync_reports_exact_counts_and_sizes_as_baseline(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    snapshot = tmp_path / "snapshot"
    defs = build_defs(db, snapshot)
    result = run_job(defs, instance)
    assert result.success

    events = data_events(result)
    assert all(isinstance(e, dg.AssetObservation) for e in events.values())
    for table, rows in PAGILA_ROW_COUNTS.items():
        metadata = events[table].metadata
        assert metadata["dagster/row_count"].value == rows
        assert metadata["dagster-postgres-connection/row_count_is_exact"].value is True
        assert metadata["dagster-postgres-connection/size_bytes"].value > 8192
        # A baseline: nothing says when the data last changed.
        assert "dagster/last_updated_timestamp" not in metadata
    assert "actor_info" not in events  # views have no data of their own to watch
    assert events["rental_by_category"].metadata["dagster/row_count"].value > 0  # materialized view

    checks = check_evaluations(result)
    assert checks and all(e.passed for e in checks.values())
    assert "actor_info" in checks  # views get the schema check

    assert load_snapshot(snapshot).relations_by_key()[(db.database, "public", "actor")]
    statistics = load_statistics(statistics_path(snapshot))
    assert statistics is not None
    assert statistics.by_key()[(db.database, "public", "actor")].row_count == 200
    assert summary(result)["relations_created"] == []


def test_insert_then_sync_reports_new_count_and_last_update(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot")
    assert run_job(defs, instance).success
    before_insert = time.time()
    pagila_server.execute(
        "INSERT INTO actor (first_name, last_name) SELECT 'A' || i, 'B' FROM generate_series(1, 5) i",
        db.database,
    )
    wait_for_changes(pagila_server, db, "actor", 5)

    result = run_job(defs, instance)
    assert result.success
    events = data_events(result)
    # Unchanged tables emit nothing; the views reading `actor` (pg_depend) changed with it.
    assert set(events) == {"actor", "actor_info", "film_list", "nicer_but_slower_film_list"}
    metadata = events["actor"].metadata
    assert metadata["dagster/row_count"].value == 205
    assert metadata["dagster-postgres-connection/data_changed"].value is True
    assert before_insert <= metadata["dagster/last_updated_timestamp"].value <= time.time()
    assert check_evaluations(result) == {}  # all checks already passed: nothing new
    assert summary(result)["relations_with_changed_data"] == 4

    again = run_job(defs, instance)
    assert again.success and data_events(again) == {}


def test_truncate_counts_as_a_change(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot")
    assert run_job(defs, instance).success
    # TRUNCATE moves no insert/update/delete counter, only the relfilenode.
    pagila_server.execute("TRUNCATE film_category", db.database)
    result = run_job(defs, instance)
    # With the views that read it (pg_depend).
    assert set(data_events(result)) == {
        "film_category", "actor_info", "film_list", "nicer_but_slower_film_list", "sales_by_film_category"
    }
    assert data_events(result)["film_category"].metadata["dagster/row_count"].value == 0


def test_unchanged_relations_can_repeat_a_cheap_observation(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot", unchanged_relations="observation")
    assert run_job(defs, instance).success
    result = run_job(defs, instance)
    events = data_events(result)
    assert events["actor"].metadata["dagster/row_count"].value == 200
    assert events["actor"].metadata["dagster-postgres-connection/data_changed"].value is False
    assert len(events) == len(data_events(run_job(defs, instance)))


def test_emit_materializations_for_changed_data(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot", emit_materializations=True)
    first = run_job(defs, instance)
    # The baseline is no write: observations only.
    assert all(isinstance(e, dg.AssetObservation) for e in data_events(first).values())
    pagila_server.execute("DELETE FROM film_actor WHERE actor_id = 1", db.database)
    wait_for_changes(pagila_server, db, "film_actor", 1)
    events = data_events(run_job(defs, instance))
    assert set(events) == {"film_actor", "actor_info", "film_list", "nicer_but_slower_film_list"}
    assert all(isinstance(event, dg.AssetMaterialization) for event in events.values())
    key = dg.AssetKey(["pagila_prod", db.database, "public", "film_actor"])
    latest = instance.fetch_materializations(key, limit=1).records[0].asset_materialization
    assert latest is not None and latest.metadata["dagster/row_count"].value == 5462 - 19


def test_large_tables_report_the_planner_estimate(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot", exact_row_count_threshold=1000)
    events = data_events(run_job(defs, instance))
    rental = events["rental"].metadata
    assert rental["dagster-postgres-connection/row_count_is_exact"].value is False
    assert abs(rental["dagster/row_count"].value - 16044) < 200  # reltuples after ANALYZE
    assert events["actor"].metadata["dagster-postgres-connection/row_count_is_exact"].value is True


def test_the_job_exists_without_schedule_and_the_schedule_with_one(db: PgTarget, tmp_path: Path) -> None:
    without = build_defs(db, tmp_path / "snapshot")
    assert without.resolve_job_def(SYNC_JOB).name == SYNC_JOB
    assert not list(without.schedules or [])
    with_schedule = build_defs(db, tmp_path / "snapshot", sync_schedule="*/30 * * * *", timezone="Europe/Paris")
    schedule = with_schedule.resolve_schedule_def(f"{SYNC_JOB}_schedule")
    assert schedule.cron_schedule == "*/30 * * * *"
    assert schedule.execution_timezone == "Europe/Paris"
    assert schedule.job_name == SYNC_JOB
    # Op, graph and job names must not clash in a code location (dg list/dev check this).
    both = build_defs(db, tmp_path / "snapshot", profiling={"relations": {"include": ["actor"]}})
    dg.Definitions.validate_loadable(both)


def test_without_a_snapshot_path_the_sync_reports_and_says_it_keeps_nothing(
    db: PgTarget, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, None)
    first = run_job(defs, instance)
    assert first.success
    assert data_events(first)["actor"].metadata["dagster/row_count"].value == 200
    state = summary(first)["state"]
    assert state.startswith("nothing kept: `build_postgres_connection_defs` got no `snapshot_path`")
    # No statistics were kept: the next run measures (and reports) everything again.
    assert "actor" in data_events(run_job(defs, instance))


def test_a_sync_without_catalog_changes_skips_the_read_but_still_measures_data(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    snapshot = tmp_path / "snapshot"
    pagila_server.execute("ANALYZE", db.database)  # row estimates settle before the baseline
    defs = build_defs(db, snapshot)  # reads the catalog and writes the snapshot
    written = snapshot.stat().st_mtime_ns

    pagila_server.execute("INSERT INTO public.language (name) VALUES ('Klingon')", db.database)
    quiet = run_job(defs, instance)
    assert quiet.success
    metadata = summary(quiet)
    assert metadata["catalog_unchanged"] is True
    assert snapshot.stat().st_mtime_ns == written  # the snapshot was not rewritten
    assert "snapshot unchanged" in metadata["state"]
    # The statistics part still ran: the insert is reported.
    assert data_events(quiet)["language"].metadata["dagster/row_count"].value == 7

    pagila_server.execute("COMMENT ON TABLE public.language IS 'spoken'", db.database)
    changed = run_job(defs, instance)
    assert changed.success
    assert summary(changed)["catalog_unchanged"] is False
    assert load_snapshot(snapshot).relations_by_key()[(db.database, "public", "language")].comment == "spoken"
    # Both runs measure the same statistics; the read is what the quiet run saved.
    assert metadata["statements"] < summary(changed)["statements"] - 8


def test_the_sync_reads_the_snapshot_file_as_it_is_when_the_run_starts(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """The code location keeps only specs; a run reads the snapshot file again (and says so when
    it is gone), so a code server does not hold the catalog's records."""
    snapshot = tmp_path / "snapshot"
    defs = build_defs(db, snapshot)
    assert run_job(defs, instance).success
    snapshot.unlink()
    gone = run_job(defs, instance)
    assert not gone.success
    messages = "\n".join(
        str(event.step_failure_data.error.message)
        for event in gone.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    )
    assert f"The catalog snapshot `{snapshot}` of connection `pagila_prod` is gone" in messages, messages
