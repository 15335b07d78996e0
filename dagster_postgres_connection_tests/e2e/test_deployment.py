"""A connection that stays in sync in a real deployment, with no person in the loop.

examples/deployment as separate processes: PostgreSQL (the watched `warehouse` database, on a
server of its own), `dagster code-server start`, `dagster-webserver` and `dagster-daemon`, with
Dagster's run/event/schedule storage in PostgreSQL (the suite's server) and the versioned defs
state storage in a temporary folder. Each sync is launched through the webserver's GraphQL and
run by the daemon in its own process; the test only changes tables and watches the webserver.
"""

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagster_postgres_connection.testing import SUPERUSER, EmbeddedPostgres
from dagster_postgres_connection_tests.e2e.deployment import Deployment, copy_example
from dagster_postgres_connection_tests.utils import REPO_ROOT

# Three Dagster processes and seven runs: 2.5-5 min on a loaded 2-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

EXAMPLE = REPO_ROOT / "examples" / "deployment"
STATE_KEY = "PostgresConnectionComponent[warehouse]"
STATE_KEY_FOLDER = "PostgresConnectionComponent__warehouse__"  # the sanitized state key
SYNC_JOB = "warehouse_sync"
READER = "dagster_reader"
READER_PASSWORD = "Reader-e2e-pw!"
# The asset of `public.<name>` in the watched database.
ASSET = "warehouse/warehouse/public/{}"
# Seconds from the end of a sync run to the change showing in the webserver (the bound).
VISIBLE_WITHIN = 60


@pytest.fixture(name="watched")
def watched_fixture(pg_server: EmbeddedPostgres) -> Iterator[EmbeddedPostgres]:
    """The watched server: its own, so the test can stop it while Dagster's storage stays up."""
    with EmbeddedPostgres(version=pg_server.version) as server:
        server.create_database("warehouse")
        server.execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, placed_at timestamptz)", "warehouse")
        server.create_readonly_role(READER, READER_PASSWORD, databases=["warehouse"])
        server.require_passwords()
        yield server


@pytest.fixture(name="dagster_storage_db")
def dagster_storage_db_fixture(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A database for Dagster's own storage on the suite's server."""
    name = f"dagster_{secrets.token_hex(4)}"
    pg_server.create_database(name)
    yield name
    pg_server.drop_database(name)


def versions(state_dir: Path) -> set[str]:
    folder = state_dir / STATE_KEY_FOLDER
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


def wait_for_assets(deployment: Deployment, present: set[str], absent: set[str], since: float) -> float:
    """Seconds from `since` until the webserver shows every key of `present` and none of `absent`."""
    deadline = since + VISIBLE_WITHIN
    keys: set[str] = set()
    while time.time() < deadline:
        keys = deployment.asset_keys()
        if present <= keys and not keys & absent:
            return time.time() - since
        time.sleep(0.25)
    raise AssertionError(
        f"Within {VISIBLE_WITHIN} s of the sync's end the webserver shows {sorted(keys)}; expected "
        f"{sorted(present)} and not {sorted(absent)}.\n{deployment.logs()}"
    )


def sync(deployment: Deployment) -> tuple[str, float, dict[str, Any]]:
    """Launches the sync job through the webserver; (run id, end time, the sync's summary)."""
    run_id = deployment.launch(SYNC_JOB)
    run = deployment.wait_for_run(run_id)
    return run_id, float(run["endTime"]), deployment.sync_output(run_id)


def written_version(summary: dict[str, Any]) -> str:
    """The state version a sync wrote, from its `state` summary."""
    match = re.search(r"version `([^`]+)` of", summary["state"])
    assert match, summary
    return match.group(1)


def data_events(deployment: Deployment, run_id: str) -> list[str]:
    return [
        event["__typename"]
        for event in deployment.run_events(run_id)
        if event["__typename"] in ("ObservationEvent", "MaterializationEvent")
    ]


def test_deployment_keeps_the_catalog_in_sync_without_a_person(
    watched: EmbeddedPostgres,
    pg_server: EmbeddedPostgres,
    dagster_storage_db: str,
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "defs_state"
    example = copy_example(EXAMPLE, tmp_path)
    project = example / "warehouse_catalog"
    # The example's dagster.yaml as is, but for the state storage: a temporary folder, not S3.
    dagster_yaml = (example / "dagster.yaml").read_text()
    assert "base_path: s3://my-bucket/dagster/defs-state" in dagster_yaml
    dagster_yaml = dagster_yaml.replace("s3://my-bucket/dagster/defs-state", str(state_dir))
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")])),
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        # examples/deployment/.env.example, pointed at the test servers
        "DAGSTER_POSTGRES_HOST": pg_server.host,
        "DAGSTER_POSTGRES_PORT": str(pg_server.port),
        "DAGSTER_POSTGRES_USER": SUPERUSER,
        "DAGSTER_POSTGRES_PASSWORD": "",
        "DAGSTER_POSTGRES_DB": dagster_storage_db,
        "POSTGRES_CONNECTION_HOST": watched.host,
        "POSTGRES_CONNECTION_PORT": str(watched.port),
        "POSTGRES_CONNECTION_PASSWORD": READER_PASSWORD,
    }
    for line in (EXAMPLE / ".env.example").read_text().splitlines():
        name = line.partition("=")[0].strip()
        if name and not name.startswith("#"):
            # The code server's address and the compute log folder are set per process by Deployment.
            assert name in env or name in ("DAGSTER_CODE_SERVER_HOST", "DAGSTER_CODE_SERVER_PORT", "DAGSTER_COMPUTE_LOGS_DIR"), name
    deployment = Deployment(example, project, dagster_yaml, env, tmp_path)

    deployed = deployment.deploy_state()
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert len(versions(state_dir)) == 1
    project_files = files_under(project)

    deployment.start()
    try:
        orders = ASSET.format("orders")
        assert orders in deployment.asset_keys()
        deployment.stop_schedule(f"{SYNC_JOB}_schedule")

        # The first sync: baseline statistics in the instance; the catalog is unchanged.
        first_id, _, first = sync(deployment)
        assert first["catalog_unchanged"] is True, first
        assert data_events(deployment, first_id) == ["ObservationEvent"]  # orders, first seen
        assert len(versions(state_dir)) == 1

        # A second sync with no change: no observation, no new version, no reload.
        quiet_id, _, quiet = sync(deployment)
        assert quiet["catalog_unchanged"] is True and "code_location_reload" not in quiet, quiet
        assert data_events(deployment, quiet_id) == []
        assert len(versions(state_dir)) == 1

        # CREATE TABLE: a new version, and the asset shows without anyone reloading anything.
        created_at = time.time()
        watched.execute("CREATE TABLE public.shipments (id bigint, order_id bigint)", "warehouse")
        shipments = ASSET.format("shipments")
        _, ended, created = sync(deployment)
        assert created["relations_created"] == ["warehouse.public.shipments"], created
        assert "reloaded" in created["code_location_reload"], created
        assert len(versions(state_dir)) == 2
        after_run = wait_for_assets(deployment, {shipments}, set(), ended)
        assert deployment.location_state()[1][STATE_KEY] == written_version(created)
        after_create = time.time() - created_at
        print(f"\nCREATE TABLE -> asset visible: {after_create:.1f} s ({after_run:.1f} s after the run's end)")

        # A rename moves the asset.
        watched.execute("ALTER TABLE public.shipments RENAME TO deliveries", "warehouse")
        deliveries = ASSET.format("deliveries")
        _, ended, renamed = sync(deployment)
        assert renamed["relations_renamed"] == {"warehouse.public.shipments": "warehouse.public.deliveries"}, renamed
        after_rename = wait_for_assets(deployment, {deliveries}, {shipments}, ended)
        print(f"rename -> asset moved: {after_rename:.1f} s after the run's end")

        # DROP TABLE: the asset goes away.
        watched.execute("DROP TABLE public.orders", "warehouse")
        _, ended, dropped = sync(deployment)
        assert dropped["relations_dropped"] == ["warehouse.public.orders"], dropped
        latest = written_version(dropped)
        after_drop = wait_for_assets(deployment, {deliveries}, {orders}, ended)
        print(f"DROP TABLE -> asset gone: {after_drop:.1f} s after the run's end")
        assert len(versions(state_dir)) == 4

        # The code server restarted while the watched PostgreSQL is down loads the latest state.
        served_by, pinned = deployment.location_state()
        assert pinned[STATE_KEY] == latest
        watched.stop()
        deployment.code_server.stop()
        deployment.code_server.start()
        deadline = time.monotonic() + 120  # the webserver reconnects and sees a new server id
        while deployment.location_state()[0] == served_by and time.monotonic() < deadline:
            time.sleep(0.5)
        deployment.wait_until_loaded()
        served_now, pinned = deployment.location_state()
        assert served_now != served_by, "the webserver still serves the stopped code server"
        assert pinned[STATE_KEY] == latest
        wait_for_assets(deployment, {deliveries}, {orders, shipments}, time.time())
    finally:
        deployment.stop()

    # The processes shared only what dagster.yaml names: PostgreSQL and the state storage. No
    # file was written into the project (no `.local_defs_state`), none into any DAGSTER_HOME, and
    # the runs' captured output stayed on the code server's "machine", where they ran.
    assert files_under(project) == project_files
    assert not any(project.rglob(".local_defs_state"))
    assert len(versions(state_dir)) == 4
    for name, machine in deployment.machines.items():
        written = files_under(machine)
        assert {f for f in written if not f.startswith("compute_logs/")} == {"home/dagster.yaml"}, (name, written)
        assert (name == "code_server") == any(f.startswith("compute_logs/") for f in written), (name, written)
