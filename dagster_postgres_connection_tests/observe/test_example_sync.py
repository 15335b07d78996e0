"""The quickstart example keeps itself alive: its sync schedule is defined, and `dg launch` of
the sync job records row counts on the Pagila assets in the instance."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

DG = str(Path(sys.executable).with_name("dg"))


@pytest.mark.slow
def test_example_schedule_and_a_launched_sync_with_row_counts(pagila: PgTarget, tmp_path: Path) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(REPO_ROOT / "examples" / "quickstart", project, ignore=shutil.ignore_patterns(".local_defs_state"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DAGSTER_HOME": str(home),
        "POSTGRES_CONNECTION_HOST": pagila.host,
        "POSTGRES_CONNECTION_PORT": str(pagila.port),
        "POSTGRES_CONNECTION_PASSWORD": pagila.password,
        "COLUMNS": "200",
    }

    def dg_cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DG, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    dg_cli("utils", "refresh-defs-state")
    listed = json.loads(dg_cli("list", "defs", "--json").stdout)
    schedules = {s["name"]: s for s in listed["schedules"]}
    assert schedules["pagila_prod_sync_schedule"]["cron_schedule"] == "*/30 * * * *"
    assert "pagila_prod_sync" in {job["name"] for job in listed["jobs"]}

    dg_cli("launch", "--job", "pagila_prod_sync")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        film = dg.AssetKey(["pagila_prod", "pagila", "public", "film"])
        observation = instance.fetch_observations(film, limit=1).records[0].asset_observation
        assert observation is not None
        assert observation.metadata["dagster/row_count"].value == 1000
        assert observation.metadata["dagster-postgres-connection/row_count_is_exact"].value is True
