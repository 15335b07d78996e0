"""The opt-in profile job: known values on a seeded table, TABLESAMPLE on a large one."""

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dagster_postgres_connection.errors import PostgresConfigError
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.observe.conftest import SYNC_JOB, build_defs, run_job
from dagster_postgres_connection_tests.utils import PgTarget

PROFILE_JOB = "pagila_prod_profile"

SEEDED = """
CREATE SCHEMA lab;
GRANT USAGE ON SCHEMA lab TO dagster_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA lab GRANT SELECT ON TABLES TO dagster_reader;
CREATE TYPE lab.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE lab.seeded (id int, score numeric, label text, mood lab.mood, doc json, seen date);
INSERT INTO lab.seeded VALUES
  (1, 10, 'a', 'sad', '{}', '2024-01-01'), (2, 20, 'b', 'ok', '{}', '2024-01-02'),
  (3, 30, NULL, 'ok', NULL, '2024-01-03'), (4, NULL, 'b', 'happy', '{}', NULL),
  (5, 40, NULL, NULL, '{}', '2024-01-05');
CREATE TABLE lab.big AS SELECT i AS id, i % 7 AS bucket FROM generate_series(1, 200000) i;
ANALYZE lab.big;
"""


def profiles(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    out = {}
    for event in result.all_events:
        if event.is_asset_observation:
            observation = event.asset_observation_data.asset_observation
            out[observation.asset_key.path[-1]] = {k: v.value for k, v in observation.metadata.items()}
    return out


def columns(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    table = profile["dagster-postgres-connection/profile"]
    return {record.data["column"]: record.data for record in table.records}


def lab_defs(db: PgTarget, tmp_path: Path, **profiling: Any) -> dg.Definitions:
    return build_defs(
        db,
        tmp_path / "snapshot",
        filters={"schemas": {"include": ["lab"]}},
        profiling={"relations": {"include": ["lab\\..*"]}, **profiling},
    )


def test_profile_of_a_seeded_table(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(SEEDED, db.database)
    result = run_job(lab_defs(db, tmp_path, row_limit=1000), instance, PROFILE_JOB)
    assert result.success
    seeded = profiles(result)["seeded"]
    assert seeded["dagster-postgres-connection/profile_rows"] == 5
    assert seeded["dagster-postgres-connection/profile_sampled"] is False
    by_column = columns(seeded)
    assert by_column["id"] == {
        "column": "id", "type": "integer", "null_fraction": 0.0, "distinct_count": 5,
        "min": "1", "max": "5", "mean": 3.0,
    }
    assert by_column["score"]["null_fraction"] == 0.2
    assert by_column["score"]["mean"] == 25.0
    assert (by_column["score"]["min"], by_column["score"]["max"]) == ("10", "40")
    assert by_column["label"]["null_fraction"] == 0.4
    assert by_column["label"]["distinct_count"] == 2
    assert by_column["label"]["mean"] is None
    assert (by_column["mood"]["min"], by_column["mood"]["max"]) == ("sad", "happy")  # enum order
    assert by_column["doc"]["null_fraction"] == 0.2
    assert by_column["doc"]["distinct_count"] is None  # json has no equality
    assert by_column["doc"]["min"] is None
    assert (by_column["seen"]["min"], by_column["seen"]["max"]) == ("2024-01-01", "2024-01-05")


def test_large_tables_are_sampled_and_capped(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(SEEDED, db.database)
    result = run_job(lab_defs(db, tmp_path, row_limit=500, sample_percent=5), instance, PROFILE_JOB)
    big = profiles(result)["big"]
    assert big["dagster-postgres-connection/profile_sampled"] is True
    assert big["dagster-postgres-connection/profile_sample_percent"] == 5.0
    assert 0 < big["dagster-postgres-connection/profile_rows"] <= 500
    assert columns(big)["bucket"]["distinct_count"] == 7


def test_distinct_counts_from_pg_stats(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(SEEDED, db.database)
    result = run_job(lab_defs(db, tmp_path, distinct_count="pg_stats"), instance, PROFILE_JOB)
    big = columns(profiles(result)["big"])
    assert big["bucket"]["distinct_count"] == 7
    assert abs(big["id"]["distinct_count"] - 200000) < 2000  # n_distinct = -1: every row


def test_profiling_never_runs_in_the_sync_and_needs_the_block(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    pagila_server.execute(SEEDED, db.database)
    defs = lab_defs(db, tmp_path)
    sync = run_job(defs, instance, SYNC_JOB)
    assert all("dagster-postgres-connection/profile" not in p for p in profiles(sync).values())
    without = build_defs(db, tmp_path / "other")
    with pytest.raises(Exception, match=PROFILE_JOB):
        without.resolve_job_def(PROFILE_JOB)


def test_invalid_profiling_settings_name_the_attribute(db: PgTarget, tmp_path: Path) -> None:
    with pytest.raises(PostgresConfigError, match=r"`profiling.sample_percent`.*\(0, 100\]"):
        lab_defs(db, tmp_path, sample_percent=0)
