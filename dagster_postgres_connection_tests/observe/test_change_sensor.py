"""`<name>_change_sensor` on real Pagila, evaluated in-process (the daemon runs it in
e2e/test_automation.py): baseline, silence, one statement per database, events for what changed."""

import dataclasses
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy.engine import Engine

from dagster_postgres_connection.errors import PostgresConfigError, PostgresConnectionError
from dagster_postgres_connection.observe.change_sensor import decode_cursor
from dagster_postgres_connection.testing import EmbeddedPostgres, find_free_port
from dagster_postgres_connection_tests.observe.conftest import (
    CONNECTION,
    build_defs,
    data_events,
    run_job,
    wait_for_changes,
)
from dagster_postgres_connection_tests.observe.test_component_sync import attributes
from dagster_postgres_connection_tests.test_component_errors import load_error_text
from dagster_postgres_connection_tests.utils import PgTarget, count_statements

SENSOR = f"{CONNECTION}_change_sensor"
DATA_VERSION_TAG = "dagster/data_version"


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dg.AssetMaterialization], str | None, int]:
    """One evaluation: its materializations, the cursor it leaves, and the statements it sent."""
    sensor = defs.resolve_sensor_def(SENSOR)
    with count_statements(Engine) as counter:
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name=SENSOR))
    if isinstance(result, dg.SkipReason):
        return [], cursor, counter.count
    assert isinstance(result, dg.SensorResult)
    events = [event for event in result.asset_events or [] if isinstance(event, dg.AssetMaterialization)]
    return events, result.cursor or cursor, counter.count


def test_no_sensor_unless_configured_and_a_floor_on_the_interval(db: PgTarget, tmp_path: Path) -> None:
    plain = build_defs(db, tmp_path / "a")
    assert SENSOR not in {s.name for s in plain.sensors or []}
    defs = build_defs(db, tmp_path / "b", change_sensor={"minimum_interval_seconds": 20})
    sensor = defs.resolve_sensor_def(SENSOR)
    assert sensor.minimum_interval_seconds == 20
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with pytest.raises(PostgresConfigError) as raised:
        build_defs(db, tmp_path / "c", change_sensor={"minimum_interval_seconds": 1})
    assert "`change_sensor.minimum_interval_seconds` 1 is below the floor of 5 s" in str(raised.value)


def test_baseline_then_silence_then_only_what_changed(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(db, tmp_path / "snapshot", change_sensor={"minimum_interval_seconds": 5})

    events, cursor, statements = _tick(defs, instance, None)
    assert events == [] and cursor is not None  # the first tick only records a baseline
    assert statements == 1  # one database, one statement
    versions = decode_cursor(cursor)
    assert versions is not None
    # Tables, partitioned tables, materialized views and views: every selected relation but the
    # foreign ones (Pagila has none) has a version.
    assert f"{CONNECTION}/{db.database}/public/actor_info" in versions
    assert f"{CONNECTION}/{db.database}/public/payment" in versions

    for _ in range(3):  # untouched: nothing, and the cursor is not rewritten
        events, same, statements = _tick(defs, instance, cursor)
        assert events == [] and same == cursor and statements == 1

    pagila_server.execute("INSERT INTO actor (first_name, last_name) VALUES ('Ada', 'Lovelace')", db.database)
    wait_for_changes(pagila_server, db, "actor", 1)
    events, moved, statements = _tick(defs, instance, cursor)
    assert statements == 1
    assert {event.asset_key.path[-1] for event in events} == {
        "actor", "actor_info", "film_list", "nicer_but_slower_film_list"
    }
    new_versions = decode_cursor(moved)
    assert new_versions is not None
    for event in events:
        name = event.asset_key.to_user_string()
        assert (event.tags or {})[DATA_VERSION_TAG] == new_versions[name] != versions[name]
    events, _, _ = _tick(defs, instance, moved)
    assert events == []


def test_the_sync_does_not_materialize_a_version_the_sensor_already_did(
    db: PgTarget, pagila_server: EmbeddedPostgres, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_defs(
        db, tmp_path / "snapshot", change_sensor={"minimum_interval_seconds": 5}, emit_materializations=True
    )
    assert run_job(defs, instance).success
    _, cursor, _ = _tick(defs, instance, None)
    pagila_server.execute("UPDATE language SET name = 'Esperanto' WHERE language_id = 6", db.database)
    wait_for_changes(pagila_server, db, "language", 1)
    events, _, _ = _tick(defs, instance, cursor)
    assert [event.asset_key.path[-1] for event in events] == ["language"]
    for event in events:  # what the daemon does with a SensorResult's asset events
        instance.report_runless_asset_event(event)

    synced = data_events(run_job(defs, instance))
    language = synced["language"]
    # Same data version as the sensor's: an observation, so automation does not run twice.
    assert isinstance(language, dg.AssetObservation)
    assert (language.tags or {})[DATA_VERSION_TAG] == (events[0].tags or {})[DATA_VERSION_TAG]
    key = dg.AssetKey([CONNECTION, db.database, "public", "language"])
    assert len(instance.fetch_materializations(key, limit=10).records) == 1


def test_a_bad_interval_in_yaml_names_the_attribute(db: PgTarget) -> None:
    text = load_error_text(attributes(db, change_sensor={"minimum_interval_seconds": 2}))
    assert "`change_sensor.minimum_interval_seconds` 2 is below the floor of 5 s" in text


def test_an_unreachable_server_fails_the_tick_naming_the_database_and_the_fix(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    snapshot = tmp_path / "snapshot"
    build_defs(db, snapshot)  # the snapshot the code location loads from, without Postgres
    moved = dataclasses.replace(db, port=find_free_port())
    defs = build_defs(moved, snapshot, change_sensor={"minimum_interval_seconds": 5})
    with pytest.raises(PostgresConnectionError) as raised:
        _tick(defs, instance, None)
    message = str(raised.value)
    assert f"Change sensor of connection `{CONNECTION}`: no database could be read: `{db.database}`" in message
    assert "check `host` and `port`" in message
