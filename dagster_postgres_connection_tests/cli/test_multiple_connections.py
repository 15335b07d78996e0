"""examples/multiple_connections: a dg workspace with two connections, two code locations."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster_dg_core.context import DgContext

from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

EXAMPLE = REPO_ROOT / "examples" / "multiple_connections"
DG = str(Path(sys.executable).with_name("dg"))
CONNECTIONS = ("pagila_prod", "pagila_reporting")


@pytest.mark.slow
def test_two_connections_are_two_code_locations(pagila: PgTarget, tmp_path: Path) -> None:
    workspace = tmp_path / "multiple_connections"
    shutil.copytree(EXAMPLE, workspace, ignore=shutil.ignore_patterns(".local_defs_state", ".env"))
    (tmp_path / "dagster_home").mkdir()
    env = {
        **os.environ,
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "POSTGRES_CONNECTION_HOST": pagila.host,
        "POSTGRES_CONNECTION_PORT": str(pagila.port),
        "PAGILA_PROD_PASSWORD": pagila.password,
        "PAGILA_REPORTING_PASSWORD": pagila.password,
    }

    context = DgContext.for_workspace_environment(workspace, {})
    projects = [workspace / spec.path for spec in context.project_specs]
    assert [DgContext.for_project_environment(p, {}).code_location_name for p in projects] == list(CONNECTIONS)

    keys: dict[str, set[tuple[str, ...]]] = {}
    for project, name in zip(projects, CONNECTIONS, strict=True):
        defs_yaml = project / "src" / name / "defs" / name / "defs.yaml"
        synced = subprocess.run(
            [sys.executable, "-m", "dagster_postgres_connection", "sync", str(defs_yaml)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert synced.returncode == 0, synced.stdout + synced.stderr
        listed = subprocess.run(
            [DG, "list", "defs", "--json"], cwd=project, env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")]))},
            capture_output=True, text=True, timeout=300,
        )
        assert listed.returncode == 0, listed.stderr
        keys[name] = {tuple(asset["asset_key_parts"]) for asset in json.loads(listed.stdout)["assets"]}

    assert ("pagila_prod", "pagila", "public", "film") in keys["pagila_prod"]
    assert ("pagila_reporting", "pagila", "public", "film_list") in keys["pagila_reporting"]
    assert all(key[0] == "pagila_reporting" for key in keys["pagila_reporting"])
    assert not keys["pagila_prod"] & keys["pagila_reporting"]

    # The whole workspace: every code location loads (from the snapshots just written).
    checked = subprocess.run(
        [DG, "check", "defs", "--use-active-venv"], cwd=workspace, env=env, capture_output=True, text=True, timeout=600
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully." in checked.stdout
