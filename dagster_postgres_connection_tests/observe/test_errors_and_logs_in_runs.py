"""Inside a run, our plain errors (e.g. `PostgresUnreachableError`) still fail the step as a
`dagster.Failure` with our message, and the catalog reader's warnings (logged without
importing dagster) reach the run's event log."""

import logging
import socket
from pathlib import Path

import dagster as dg
import pytest

from dagster_postgres_connection import build_postgres_connection_defs
from dagster_postgres_connection.errors import PostgresSnapshotError
from dagster_postgres_connection.observe.failures import reported_as_failure
from dagster_postgres_connection_tests.observe.conftest import (
    CONNECTION,
    PASSWORD_ENV,
    run_job,
    summary,
)
from dagster_postgres_connection_tests.utils import PgTarget


def _defs(
    target: PgTarget, snapshot: Path, *, port: int | None = None, databases: list[str] | None = None
) -> dg.Definitions:
    return build_postgres_connection_defs(
        name=CONNECTION,
        host=target.host,
        port=port or target.port,
        username=target.user,
        password=dg.EnvVar(PASSWORD_ENV),
        databases=databases or [target.database],
        snapshot_path=snapshot,
    )


def test_a_reader_warning_appears_in_the_runs_event_log(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = _defs(db, tmp_path / "snapshot", databases=[db.database, "no_such_database"])
    result = run_job(defs, instance)
    assert result.success
    assert summary(result)["relations"] > 0
    warnings = [
        e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING
    ]
    assert any(
        m.startswith("Skipping `no_such_database`:") and "does not exist" in m for m in warnings
    ), warnings


def test_an_unreachable_server_fails_the_sync_step_with_our_message(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    snapshot = tmp_path / "snapshot"
    assert run_job(_defs(db, snapshot), instance).success  # a snapshot to load the definitions from
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_job(_defs(db, snapshot, port=port), instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    user_failure = failure.step_failure_data.user_failure_data
    assert user_failure is not None, "not reported as a dagster.Failure"
    assert f":{port}" in (user_failure.description or "")
    assert failure.step_failure_data.error is not None
    assert failure.step_failure_data.error.cls_name == "Failure"


def test_reported_as_failure_keeps_the_message_and_the_cause() -> None:
    with pytest.raises(dg.Failure) as raised, reported_as_failure():
        raise PostgresSnapshotError(
            "No snapshot of connection `x`: run `dg utils refresh-defs-state`."
        )
    assert (
        raised.value.description
        == "No snapshot of connection `x`: run `dg utils refresh-defs-state`."
    )
    assert isinstance(raised.value.__cause__, PostgresSnapshotError)
    with pytest.raises(ZeroDivisionError), reported_as_failure():  # other errors pass through
        _ = 1 / 0
