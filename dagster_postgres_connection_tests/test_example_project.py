"""`dg` on the quickstart example: refresh, list and check, also with Postgres stopped.

Runs the real `dg` CLI in a copy of `examples/quickstart` (the copy goes first on PYTHONPATH,
so the repository's own example never gets a state folder).
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.utils import REPO_ROOT

READER = "dagster_reader"
PASSWORD = "example-Pw-123"
DG = str(Path(sys.executable).with_name("dg"))


@pytest.fixture(name="own_server", scope="module")
def own_server_fixture() -> Iterator[EmbeddedPostgres]:
    """A server of our own, so this module can stop it without disturbing other tests."""
    with EmbeddedPostgres(version=18) as server:
        server.load_pagila("pagila")
        server.create_readonly_role(READER, PASSWORD, databases=["pagila"])
        server.require_passwords()
        yield server


@pytest.fixture(name="project")
def project_fixture(tmp_path: Path, own_server: EmbeddedPostgres) -> tuple[Path, dict[str, str]]:
    project = tmp_path / "quickstart"
    shutil.copytree(REPO_ROOT / "examples" / "quickstart", project, ignore=shutil.ignore_patterns(".local_defs_state"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "POSTGRES_CONNECTION_HOST": own_server.host,
        "POSTGRES_CONNECTION_PORT": str(own_server.port),
        "POSTGRES_CONNECTION_PASSWORD": PASSWORD,
        "COLUMNS": "200",
    }
    (tmp_path / "dagster_home").mkdir()
    return project, env


def dg(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DG, *args], cwd=project, env=env, capture_output=True, text=True, timeout=180)


def listed_keys(project: Path, env: dict[str, str]) -> set[tuple[str, ...]]:
    result = dg(project, env, "list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    return {tuple(asset["asset_key_parts"]) for asset in json.loads(result.stdout)["assets"]}


def test_dg_refresh_list_and_check_then_load_with_postgres_stopped(
    project: tuple[Path, dict[str, str]], own_server: EmbeddedPostgres
) -> None:
    path, env = project
    refreshed = dg(path, env, "utils", "refresh-defs-state")
    assert refreshed.returncode == 0, refreshed.stderr
    state = list(path.rglob(".local_defs_state/*/state"))
    assert len(state) == 1
    assert PASSWORD not in state[0].read_text()

    keys = listed_keys(path, env)
    assert ("pagila_prod", "pagila", "public", "film") in keys
    assert ("pagila_prod", "pagila", "public", "rental_by_category") in keys
    assert all(k[:3] == ("pagila_prod", "pagila", "public") for k in keys)

    own_server.stop()
    try:
        # dg sets DAGSTER_IS_DEV_CLI: with our refresh_if_dev default (false) it loads the snapshot.
        assert listed_keys(path, env) == keys
        checked = dg(path, env, "check", "defs")
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # No snapshot and no database: a clear message, not an empty code location.
        shutil.rmtree(state[0].parent)
        failed = dg(path, env, "check", "defs")
        assert failed.returncode != 0
        output = failed.stdout + failed.stderr
        assert "Connection `pagila_prod` has no catalog snapshot yet" in output
        assert "Nothing listens on" in output or "Could not connect" in output
        assert PASSWORD not in output
    finally:
        own_server.start()
