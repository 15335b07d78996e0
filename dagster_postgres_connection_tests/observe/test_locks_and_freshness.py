"""A table locked by another session is skipped, not waited on; freshness checks follow the
last-update times the sync reports."""

import logging
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.observe.conftest import (
    build_defs,
    data_events,
    run_job,
    summary,
    wait_for_changes,
)
from dagster_postgres_connection_tests.utils import PgTarget


def test_a_table_locked_access_exclusive_is_skipped_with_a_warning(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot", lock_timeout_seconds=1)
    with pagila_server.connect(db.database) as holder:
        holder.autocommit = False
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE public.actor IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = run_job(defs, instance)
        elapsed = time.monotonic() - started
        holder.rollback()
    assert result.success
    assert elapsed < 60, elapsed  # one lock_timeout, not a hang
    events = data_events(result)
    assert "actor" not in events and events["film"].metadata["dagster/row_count"].value == 1000
    assert "lock_timeout_seconds" in summary(result)["relations_skipped"][f"{db.database}.public.actor"]
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any(f"Skipping `{db.database}.public.actor` this sync" in m for m in warnings), warnings

    # Lock released: the next sync measures it (it never had a baseline) and nothing else.
    after = run_job(defs, instance)
    assert set(data_events(after)) == {"actor"}
    assert data_events(after)["actor"].metadata["dagster/row_count"].value == 200


def test_last_update_freshness_check_passes_and_fails_with_inserts(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    window = 12.0  # seconds; wide enough for a sync plus a check on a busy machine
    key = dg.AssetKey(["pagila_prod", db.database, "public", "language"])
    freshness = dg.build_last_update_freshness_checks(assets=[key], lower_bound_delta=timedelta(seconds=window))
    defs = dg.Definitions.merge(
        build_defs(db, tmp_path / "snapshot"),
        dg.Definitions(
            asset_checks=freshness,
            jobs=[dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*freshness))],
        ),
    )

    def fresh() -> bool:
        result = run_job(defs, instance, "freshness")
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation.passed

    inserted = 0

    def insert_and_sync() -> float:
        """Returns the last-update time the sync reported."""
        nonlocal inserted
        inserted += 1
        pagila_server.execute(f"INSERT INTO language (name) VALUES ('lang{inserted}')", db.database)
        wait_for_changes(pagila_server, db, "language", inserted)
        events = data_events(run_job(defs, instance))
        assert set(events) == {"language"}
        return events["language"].metadata["dagster/last_updated_timestamp"].value

    assert run_job(defs, instance).success  # baseline: no known update time yet
    assert not fresh()
    updated_at = insert_and_sync()
    assert fresh()
    time.sleep(max(0.0, updated_at + window + 0.5 - time.time()))
    assert data_events(run_job(defs, instance)) == {}  # no insert: nothing new reported
    assert not fresh()
    insert_and_sync()
    assert fresh()
