"""examples/automation driven by a real `dagster-daemon`: rows inserted into `rental` make the
change sensor materialize it, and the daemon's automation sensor runs `rentals_report` (deps on
`rental`, `AutomationCondition.eager()`) once; untouched, nothing is reported and nothing runs;
and `rental`'s FreshnessPolicy fails once it stays untouched past its window.

The test only writes to Postgres and reads the instance the daemon writes to (SQLite under its
DAGSTER_HOME); the daemon, its code server and the runs it launches are separate processes,
started by PID and stopped with `stop_process_group`.
"""

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.scheduler.instigation import InstigatorState, InstigatorType, TickStatus

from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.observe.statistics import read_data_versions
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.e2e.deployment import BIN, DagsterProcess
from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

EXAMPLE = REPO_ROOT / "examples" / "automation"
CHANGE_SENSOR = "pagila_prod_change_sensor"
AUTOMATION_SENSOR = "pagila_prod_automation"
INTERVAL = 5  # seconds, both sensors (the example says 30)
FAIL_WINDOW = 60  # seconds: Dagster's minimum


def _project(db: PgTarget, root: Path) -> Path:
    """A copy of the example over `db`, with short intervals and a one-minute freshness window."""
    project = root / "automation"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".local_defs_state", "__pycache__", ".env"))
    defs_yaml = project / "src" / "automation" / "defs" / "pagila_prod" / "defs.yaml"
    text = defs_yaml.read_text()
    for old, new in (
        ("databases: [pagila]", f"databases: [{db.database}]"),
        ("minimum_interval_seconds: 30", f"minimum_interval_seconds: {INTERVAL}"),
        ("fail_window: 6h", "fail_window: 1m"),
        ("      warn_window: 1h\n", ""),
    ):
        assert old in text, old
        text = text.replace(old, new)
    defs_yaml.write_text(text)
    reports = project / "src" / "automation" / "defs" / "reports.py"
    text = reports.read_text()
    for old, new in (('"pagila", "public"', f'"{db.database}", "public"'), ("minimum_interval_seconds=30", f"minimum_interval_seconds={INTERVAL}")):
        assert old in text, old
        text = text.replace(old, new)
    reports.write_text(text)
    return project


@pytest.fixture(name="daemon")
def daemon_fixture(
    fresh_database: Callable[..., PgTarget], tmp_path: Path
) -> Iterator[tuple[PgTarget, dg.DagsterInstance, DagsterProcess]]:
    db = fresh_database()
    project = _project(db, tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": str(INTERVAL),
        "POSTGRES_CONNECTION_HOST": db.host,
        "POSTGRES_CONNECTION_PORT": str(db.port),
        "POSTGRES_CONNECTION_PASSWORD": db.password,
    }
    daemon = DagsterProcess(
        "daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=project, env=env, logs=tmp_path
    )
    daemon.start()
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield db, instance, daemon
    finally:
        daemon.stop()


def _sensor(instance: dg.DagsterInstance, name: str) -> InstigatorState | None:
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return next((state for state in states if state.instigator_name == name), None)


def _ticks(instance: dg.DagsterInstance, name: str) -> list:
    state = _sensor(instance, name)
    if state is None:
        return []
    return [
        tick for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000)
        if tick.status in (TickStatus.SUCCESS, TickStatus.SKIPPED, TickStatus.FAILURE)
    ]


def _wait(what: str, condition: Callable[[], object], daemon: DagsterProcess, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daemon.check_alive()
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}.\n{daemon.log_tail()}")


def _report_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    report = dg.AssetKey("rentals_report")
    return [run for run in instance.get_runs() if run.asset_selection and report in run.asset_selection]


def test_an_insert_runs_the_downstream_asset_once_and_freshness_fails_when_untouched(
    daemon: tuple[PgTarget, dg.DagsterInstance, DagsterProcess],
    pagila_server: EmbeddedPostgres,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, instance, process = daemon
    rental = dg.AssetKey(["pagila_prod", db.database, "public", "rental"])

    # The code location loads (reading the catalog once), the sensor records its baseline.
    _wait("the change sensor's baseline", lambda: (s := _sensor(instance, CHANGE_SENSOR)) and s.instigator_data and s.instigator_data.cursor, process, 240)  # type: ignore[union-attr]
    assert _ticks(instance, AUTOMATION_SENSOR) or _wait("an automation tick", lambda: _ticks(instance, AUTOMATION_SENSOR), process, 60)

    # Untouched: several ticks of both sensors, no materialization of `rental`, no run.
    quiet_from = len(_ticks(instance, CHANGE_SENSOR))
    automation_from = len(_ticks(instance, AUTOMATION_SENSOR))
    _wait("3 quiet change-sensor ticks", lambda: len(_ticks(instance, CHANGE_SENSOR)) >= quiet_from + 3, process, 90)
    _wait("2 quiet automation ticks", lambda: len(_ticks(instance, AUTOMATION_SENSOR)) >= automation_from + 2, process, 90)
    assert instance.fetch_materializations(rental, limit=5).records == []
    assert _report_runs(instance) == []

    # Insert: the sensor materializes `rental` with its new data version, the daemon runs the report.
    inserted_at = time.time()
    pagila_server.execute(
        "INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
        "SELECT now() + i * interval '1 second', 1, 1, 1 FROM generate_series(1, 3) i",
        db.database,
    )
    materialized = _wait("a materialization of `rental`", lambda: instance.fetch_materializations(rental, limit=5).records, process, 60)
    record = materialized[0]  # type: ignore[index]
    settings = build_postgres_connection_settings(
        name="pagila_prod", host=db.host, port=db.port, username=db.user,
        password=dg.EnvVar("DPC_TEST_AUTOMATION_PASSWORD"), databases=[db.database],
    )
    monkeypatch.setenv("DPC_TEST_AUTOMATION_PASSWORD", db.password)
    versions, _, _ = read_data_versions(settings, db.database, ["public"])
    assert record.asset_materialization.tags["dagster/data_version"] == versions[(db.database, "public", "rental")]

    def finished_run() -> dg.DagsterRun | None:
        runs = _report_runs(instance)
        return next((run for run in runs if run.status == dg.DagsterRunStatus.SUCCESS), None)

    run = _wait("the daemon's run of `rentals_report`", finished_run, process, 180)
    assert isinstance(run, dg.DagsterRun)
    run_record = instance.get_run_record_by_id(run.run_id)
    assert run_record is not None and run_record.end_time is not None
    latency = {
        "materialized": record.timestamp - inserted_at,
        "run_created": run_record.create_timestamp.timestamp() - inserted_at,
        "run_finished": run_record.end_time - inserted_at,
    }
    sys.stderr.write(f"change -> downstream latency (s): {latency}\n")
    report = instance.fetch_materializations(dg.AssetKey("rentals_report"), limit=1).records[0]
    assert report.asset_materialization is not None
    assert report.asset_materialization.metadata["rental_data_version"].value == versions[(db.database, "public", "rental")]

    # Untouched again: more ticks, no new event of `rental`, no second run.
    ticks = len(_ticks(instance, CHANGE_SENSOR))
    automation_ticks = len(_ticks(instance, AUTOMATION_SENSOR))
    _wait("4 more change-sensor ticks", lambda: len(_ticks(instance, CHANGE_SENSOR)) >= ticks + 4, process, 120)
    _wait("3 more automation ticks", lambda: len(_ticks(instance, AUTOMATION_SENSOR)) >= automation_ticks + 3, process, 120)
    assert len(instance.fetch_materializations(rental, limit=5).records) == 1
    assert [r.run_id for r in _report_runs(instance)] == [run.run_id]

    # Freshness: passing after the materialization, failing once `rental` stayed untouched 1 minute.
    def state() -> FreshnessState | None:
        record = instance.get_freshness_state_records([rental]).get(rental)
        return record.freshness_state if record is not None else None

    _wait("a freshness evaluation", state, process, 60)
    seen_at = time.time()
    if seen_at - record.timestamp < FAIL_WINDOW - INTERVAL:
        assert state() == FreshnessState.PASS
    _wait("freshness FAIL", lambda: state() == FreshnessState.FAIL, process, FAIL_WINDOW + 90)
    assert time.time() - record.timestamp >= FAIL_WINDOW
