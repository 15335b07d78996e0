"""The sync attributes of `PostgresConnectionComponent`: job, schedule, checks, profile job, and
the snapshot refresh that makes the next load show new relations."""

from typing import Any

import dagster as dg
import pytest
from dagster._utils.test.definitions import scoped_definitions_load_context

from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.observe.conftest import (
    PASSWORD_ENV,
    SYNC_JOB,
    data_events,
    run_job,
    summary,
)
from dagster_postgres_connection_tests.test_component_errors import BASE, load_error_text
from dagster_postgres_connection_tests.utils import (
    PgTarget,
    connection_attributes,
    scaffolded_connection,
)


def attributes(target: PgTarget, **extra: Any) -> dict[str, Any]:
    return connection_attributes(target, password_env=PASSWORD_ENV, **extra)


def load(sandbox: Any, path: Any) -> dg.Definitions:
    with scoped_definitions_load_context():
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            return defs


def test_yaml_sync_attributes_give_job_schedule_checks_and_profile_job(db: PgTarget) -> None:
    attrs = attributes(
        db,
        sync_schedule="*/15 * * * *",
        timezone="Europe/Paris",
        schema_check_severity="ERROR",
        profiling={"relations": {"include": ["public\\.film"]}, "profile_schedule": "0 3 * * 0"},
    )
    with scaffolded_connection(attrs) as (sandbox, path):
        defs = load(sandbox, path)
    schedule = defs.resolve_schedule_def(f"{SYNC_JOB}_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("*/15 * * * *", "Europe/Paris")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_job_def("pagila_prod_profile").name == "pagila_prod_profile"
    assert defs.resolve_schedule_def("pagila_prod_profile_schedule").cron_schedule == "0 3 * * 0"
    actor = dg.AssetKey(["pagila_prod", db.database, "public", "actor"])
    check_keys = defs.resolve_asset_graph().get_check_keys_for_assets({actor})
    assert check_keys == {dg.AssetCheckKey(actor, "schema_unchanged")}


def test_yaml_schema_checks_false_defines_no_check_but_keeps_the_sync_job(
    db: PgTarget, pagila_server: EmbeddedPostgres, instance: dg.DagsterInstance
) -> None:
    with scaffolded_connection(attributes(db, schema_checks=False)) as (sandbox, path):
        defs = load(sandbox, path)
        graph = defs.resolve_asset_graph()
        actor = dg.AssetKey(["pagila_prod", db.database, "public", "actor"])
        assert actor in graph.get_all_asset_keys()
        assert not graph.asset_check_keys
        assert "schema_unchanged" not in (defs.resolve_job_def(SYNC_JOB).description or "")

        assert run_job(defs, instance).success
        pagila_server.execute("ALTER TABLE public.actor ADD COLUMN nickname text", db.database)
        result = run_job(defs, instance)
        assert result.success
        assert not result.get_asset_check_evaluations()
        assert summary(result)["schema_changes"] == {
            f"{db.database}.public.actor": ["column `nickname` added (text)"]
        }


def test_sync_refreshes_the_local_state_so_the_next_load_shows_new_tables(
    db: PgTarget, pagila_server: EmbeddedPostgres, instance: dg.DagsterInstance
) -> None:
    with scaffolded_connection(attributes(db)) as (sandbox, path):
        defs = load(sandbox, path)
        new_key = dg.AssetKey(["pagila_prod", db.database, "public", "arrivals"])
        assert new_key not in defs.resolve_asset_graph().get_all_asset_keys()
        pagila_server.execute("CREATE TABLE public.arrivals (id int)", db.database)

        result = run_job(defs, instance)
        assert result.success
        assert data_events(result)["actor"].metadata["dagster/row_count"].value == 200

        reloaded = load(sandbox, path)
        assert new_key in reloaded.resolve_asset_graph().get_all_asset_keys()
        # The statistics were kept beside the state: the reloaded job knows actor is unchanged,
        # and reports the new table for the first time.
        second = run_job(reloaded, instance)
        assert set(data_events(second)) == {"arrivals"}


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ({"sync_schedule": "every hour"}, ["`sync_schedule` 'every hour' is not a valid cron expression", "*/30 * * * *"]),
        ({"timezone": "Mars/Olympus"}, ["`timezone` 'Mars/Olympus' is not an IANA time zone", "Europe/Paris"]),
        ({"mass_disappearance_threshold": 5}, ["`mass_disappearance_threshold` 5", "(0, 1]"]),
        ({"unchanged_relations": "all"}, ["unchanged_relations", "'nothing' or 'observation'"]),
        ({"profiling": {"sample_percent": 0}}, ["sample_percent", "(0, 100]"]),
    ],
    ids=["cron", "timezone", "threshold", "unchanged", "sample-percent"],
)
def test_invalid_sync_attributes_fail_at_load_naming_the_attribute(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], fragments: list[str]
) -> None:
    monkeypatch.setenv("DPC_TEST_PW", "not-used")
    text = load_error_text({**BASE, **extra})
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
