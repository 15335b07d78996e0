"""Fixtures of the sync/profile tests: a private Pagila copy per test, and helpers to run jobs.

Every test that changes data or DDL works on its own `fresh_database` copy, so the shared
`pagila` database stays untouched.
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from psycopg2 import sql

from dagster_postgres_connection import build_postgres_connection_defs
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.utils import PgTarget

PASSWORD_ENV = "DPC_TEST_OBSERVE_PASSWORD"
CONNECTION = "pagila_prod"
SYNC_JOB = f"{CONNECTION}_sync"


@pytest.fixture(name="db")
def db_fixture(fresh_database: Callable[..., PgTarget], monkeypatch: pytest.MonkeyPatch) -> PgTarget:
    """A private Pagila copy; the read-only role's password is in `PASSWORD_ENV`."""
    target = fresh_database()
    monkeypatch.setenv(PASSWORD_ENV, target.password)
    return target


@pytest.fixture(name="instance")
def instance_fixture() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def build_defs(target: PgTarget, snapshot_path: Path | None, **options: Any) -> dg.Definitions:
    """The factory over `target`, with a short lock_timeout so lock tests stay quick."""
    options.setdefault("lock_timeout_seconds", 1)
    return build_postgres_connection_defs(
        name=CONNECTION,
        host=target.host,
        port=target.port,
        username=target.user,
        password=dg.EnvVar(PASSWORD_ENV),
        databases=[target.database],
        snapshot_path=snapshot_path,
        **options,
    )


def run_job(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str = SYNC_JOB, *, force: bool | None = None
) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {f"{name}_op": {"config": {"force": force}}}} if force is not None else None
    return defs.resolve_job_def(name).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )


def data_events(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetObservation | dg.AssetMaterialization]:
    """Observations and materializations of a run, by the relation name (last key part)."""
    events: dict[str, Any] = {}
    for event in result.all_events:
        if event.is_asset_observation or event.is_step_materialization:
            data = event.asset_observation_data.asset_observation if event.is_asset_observation else event.step_materialization_data.materialization
            events[data.asset_key.path[-1]] = data
    return events


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}


def summary(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The run-level metadata of the sync op's output."""
    for event in result.all_events:
        if event.is_successful_output:
            return {k: v.value for k, v in event.step_output_data.metadata.items()}
    raise AssertionError("the sync op yielded no output")


def superuser_execute(server: EmbeddedPostgres, target: PgTarget, statements: str) -> None:
    server.execute(statements, target.database)


def wait_for_changes(server: EmbeddedPostgres, target: PgTarget, table: str, at_least: int) -> None:
    """Statistics reach shared memory when the writing backend flushes them (at its exit, or up
    to a second after its transaction): wait until `table` shows `at_least` changes."""
    query = sql.SQL(
        "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = %s"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = server.query(query, [table], database=target.database)
        if rows and rows[0][0] >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"statistics of {table} never reached {at_least} changes: {rows}")
