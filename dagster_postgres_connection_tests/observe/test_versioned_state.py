"""The sync under `defs_state: {management_type: VERSIONED_STATE_STORAGE}`: each sync that finds
the catalog changed writes a new version to the instance's defs state storage (a
`UPathDefsStateStorage` on a temporary folder here), statistics live in the instance, and an
unchanged catalog writes no version. (The reload through a real code server is tested end to end
in `e2e/test_deployment.py`.)"""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.defs_state.base import set_defs_state_storage
from dagster._utils.test.definitions import scoped_definitions_load_context

from dagster_postgres_connection.observe.versioned_state import reload_code_location
from dagster_postgres_connection.testing import LOCALHOST, EmbeddedPostgres, find_free_port
from dagster_postgres_connection_tests.observe.conftest import (
    PASSWORD_ENV,
    data_events,
    run_job,
    summary,
)
from dagster_postgres_connection_tests.utils import (
    PgTarget,
    connection_attributes,
    scaffolded_connection,
)

STATE_KEY = "PostgresConnectionComponent[pagila_prod]"
SANITIZED_STATE_KEY = "PostgresConnectionComponent__pagila_prod__"  # its folder in the storage


@pytest.fixture(name="versioned_instance")
def versioned_instance_fixture(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    overrides = {
        "defs_state_storage": {
            "module": "dagster._core.storage.defs_state.blob_storage_state_storage",
            "class": "UPathDefsStateStorage",
            "config": {"base_path": str(tmp_path / "defs_state")},
        }
    }
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


def versions(root: Path) -> set[str]:
    """The state versions written for the connection (one file each)."""
    folder = root / "defs_state" / SANITIZED_STATE_KEY
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def load(sandbox: Any, path: Path) -> dg.Definitions:
    # A fresh INITIALIZATION load pins the storage's latest version, as a code server start does.
    with scoped_definitions_load_context():
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            return defs


def test_versioned_sync_writes_a_version_only_when_the_catalog_changed(
    db: PgTarget, pagila_server: EmbeddedPostgres, versioned_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    attributes = connection_attributes(
        db,
        password_env=PASSWORD_ENV,
        defs_state={"management_type": "VERSIONED_STATE_STORAGE"},
        profiling={"relations": {"include": ["public\\.actor"]}},
    )
    storage = versioned_instance.defs_state_storage
    assert storage is not None
    with scaffolded_connection(attributes) as (sandbox, path):
        # The deployment's first refresh (`dg utils refresh-defs-state` does this).
        with sandbox.build_component_tree() as tree:
            component = tree.load_component(path)
            first = asyncio.run(component.refresh_state(sandbox.project_root))
        assert versions(tmp_path) == {first}
        assert not (sandbox.project_root / ".local_defs_state").exists()

        defs = load(sandbox, path)
        new_key = dg.AssetKey(["pagila_prod", db.database, "public", "arrivals"])
        assert new_key not in defs.resolve_asset_graph().get_all_asset_keys()

        # No change: statistics go to the instance, no version is written.
        baseline = run_job(defs, versioned_instance)
        assert baseline.success
        assert summary(baseline)["catalog_unchanged"] is True
        assert versions(tmp_path) == {first}
        quiet = run_job(defs, versioned_instance)
        assert quiet.success and not data_events(quiet)
        assert versions(tmp_path) == {first}

        pagila_server.execute("CREATE TABLE public.arrivals (id int)", db.database)
        changed = run_job(defs, versioned_instance)
        assert changed.success
        out = summary(changed)
        assert out["catalog_unchanged"] is False
        assert out["relations_created"] == [f"{db.database}.public.arrivals"]
        new_versions = versions(tmp_path) - {first}
        assert len(new_versions) == 1 and storage.get_latest_version(STATE_KEY) in new_versions
        assert "written to the defs state storage" in out["state"]
        # In-process there is no code server to ask: the run says so and still succeeds.
        assert "launched in-process" in out["code_location_reload"]

        reloaded = load(sandbox, path)
        assert new_key in reloaded.resolve_asset_graph().get_all_asset_keys()
        # The statistics came from the instance: only the new table is new data.
        after = run_job(reloaded, versioned_instance)
        assert after.success and set(data_events(after)) == {"arrivals"}
        assert len(versions(tmp_path)) == 2
        # The profile job finds its relations in the latest state version too.
        profiled = run_job(reloaded, versioned_instance, "pagila_prod_profile")
        assert profiled.success and set(data_events(profiled)) == {"actor"}

        # The key cleared from the storage (`set_latest_version(key, None)`): the sync says how
        # to put a snapshot back instead of comparing with nothing.
        storage.set_latest_version(STATE_KEY, None)
        orphaned = run_job(reloaded, versioned_instance)
        assert not orphaned.success
        failure = next(e for e in orphaned.all_events if e.is_step_failure)
        description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
        assert f"no catalog snapshot under `{STATE_KEY}`" in description, description
        assert "run `dg utils refresh-defs-state`" in description


def load_error_text(sandbox: Any, path: Path) -> str:
    """The messages of a failed load and of its causes."""
    with pytest.raises(Exception) as raised:
        load(sandbox, path)
    causes = []
    error: BaseException | None = raised.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__
    return "\n".join(causes)


def test_versioned_load_names_the_fix_without_storage_or_version(
    db: PgTarget, versioned_instance: dg.DagsterInstance
) -> None:
    attributes = connection_attributes(
        db, password_env=PASSWORD_ENV, defs_state={"management_type": "VERSIONED_STATE_STORAGE"}
    )
    with scaffolded_connection(attributes) as (sandbox, path):
        # Inside `versioned_instance`: a storage, but no version written yet.
        text = load_error_text(sandbox, path)
        assert "has no catalog snapshot in its state storage yet: run `dg utils refresh-defs-state`" in text, text
        # No instance storage at all (a dagster.yaml without `defs_state_storage`).
        with set_defs_state_storage(None):
            text = load_error_text(sandbox, path)
        assert "has no `defs_state_storage`: add one to dagster.yaml" in text, text
        assert "`UPathDefsStateStorage`" in text and "LOCAL_FILESYSTEM" in text


def test_reload_request_to_an_unreachable_code_server_warns_naming_the_fix(
    versioned_instance: dg.DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    """The run's code server is gone (a port nothing listens on): the sync warns and goes on."""
    origin = GrpcServerCodeLocationOrigin(host=LOCALHOST, port=find_free_port(), location_name="warehouse")
    run = dg.DagsterRun(
        job_name="warehouse_sync",
        run_id="0" * 36,
        remote_job_origin=RemoteJobOrigin(RemoteRepositoryOrigin(origin, "__repository__"), "warehouse_sync"),
    )
    storage = versioned_instance.defs_state_storage
    assert storage is not None
    started = time.monotonic()
    message = reload_code_location(run, storage, "warehouse")
    assert time.monotonic() - started < 30
    assert "Could not ask the code server of location `warehouse`" in message
    assert f"{LOCALHOST}:{origin.port}" in message
    assert "restart the code server or reload the location in the UI" in message
    assert message in caplog.text
