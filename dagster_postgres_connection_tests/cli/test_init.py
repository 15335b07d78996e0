"""`init` and the `dg scaffold defs` scaffolder: projects `dg` accepts, named after the connection."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from dagster.components.testing import create_defs_folder_sandbox
from dagster_dg_core.context import DgContext

from dagster_postgres_connection import PostgresConnectionComponent
from dagster_postgres_connection.cli import cli
from dagster_postgres_connection.components.connection_component.scaffolder import (
    PostgresConnectionScaffolderParams,
    render_defs_yaml,
)
from dagster_postgres_connection_tests.utils import PgTarget

DG = str(Path(sys.executable).with_name("dg"))


def dg_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1", "DAGSTER_HOME": str(home), **extra}


def run_dg(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def init(tmp_path: Path, name: str, target: PgTarget, *extra: str) -> Any:
    return CliRunner().invoke(
        cli, ["init", name, "--host", target.host, "--port", str(target.port), "-d", target.database, *extra],
        catch_exceptions=False,
    )


@pytest.mark.slow
def test_init_makes_a_project_dg_accepts_with_code_location_name(
    pagila: PgTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = init(tmp_path, "pagila_init_test", pagila)
    assert result.exit_code == 0, result.output
    project = tmp_path / "pagila_init_test"
    defs_yaml = project / "src/pagila_init_test/defs/pagila_init_test/defs.yaml"
    assert yaml.safe_load(defs_yaml.read_text())["attributes"]["password"] == "{{ env.PAGILA_INIT_TEST_PASSWORD }}"
    assert (project / ".env.example").read_text().splitlines()[-1] == "PAGILA_INIT_TEST_PASSWORD="
    assert DgContext.for_project_environment(project, {}).code_location_name == "pagila_init_test"

    # The password goes into .env, as the README says; dg reads it, and so does our CLI.
    (project / ".env").write_text(f"PAGILA_INIT_TEST_PASSWORD={pagila.password}\n")
    checked = run_dg(project, dg_env(tmp_path), "check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully." in checked.stdout
    assert pagila.password not in checked.stdout + checked.stderr


def test_init_adds_the_project_to_an_existing_workspace(
    pagila: PgTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dg.toml").write_text('directory_type = "workspace"\n\n# our connections\n[workspace]\n')
    (tmp_path / "projects").mkdir()
    monkeypatch.chdir(tmp_path / "projects")  # anywhere inside the workspace
    for name in ("conn_alpha", "conn_beta"):
        result = init(tmp_path, name, pagila)
        assert result.exit_code == 0, result.output
        assert f"Added it to the workspace {tmp_path / 'dg.toml'}." in result.output
    workspace = DgContext.for_workspace_environment(tmp_path, {})
    assert [spec.path.as_posix() for spec in workspace.project_specs] == ["projects/conn_alpha", "projects/conn_beta"]
    assert "# our connections" in (tmp_path / "dg.toml").read_text()
    assert DgContext.for_project_environment(tmp_path / "projects/conn_beta", {}).code_location_name == "conn_beta"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pagila-prod", "NAME 'pagila-prod' contains characters Dagster cannot use"),
        ("2024_sales", "must not start with a digit"),
        ("json", "A Python module `json` already exists in this environment"),
    ],
)
def test_init_rejects_unusable_names(name: str, message: str, pagila: PgTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = init(tmp_path, name, pagila)
    assert result.exit_code == 2
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_scaffolder_writes_a_loadable_defs_yaml(pagila: PgTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREHOUSE_PW", pagila.password)
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_path="warehouse",
            scaffold_params={
                "host": pagila.host, "port": pagila.port, "username": "dagster_reader",
                "password_env_var": "WAREHOUSE_PW", "databases": [pagila.database],
            },
        )
        attributes = yaml.safe_load((defs_path / "defs.yaml").read_text())["attributes"]
        assert attributes == {
            "name": "warehouse", "host": pagila.host, "port": pagila.port, "username": "dagster_reader",
            "password": "{{ env.WAREHOUSE_PW }}", "databases": [pagila.database],
        }
        with sandbox.build_component_tree() as tree:
            component = tree.load_component(defs_path)
        assert isinstance(component, PostgresConnectionComponent)
        assert component.settings.password.env_var == "WAREHOUSE_PW"
        assert component.settings.databases == (pagila.database,)


@pytest.mark.parametrize(
    "given, expected",
    [(["pagila"], ["pagila"]), (["a", "b"], ["a", "b"]), (['["a", "b"]'], ["a", "b"]), (None, None)],
    ids=["one", "repeated", "json-list", "none"],
)
def test_scaffolder_databases_option_accepts_a_json_list(given: list[str] | None, expected: list[str] | None) -> None:
    params = PostgresConnectionScaffolderParams(databases=given)
    assert params.databases == expected
    rendered = render_defs_yaml("conn", params)
    if expected:
        assert f"databases: {json.dumps(expected)}" in rendered
