"""Every example under examples/ loads with the real `dg` CLI against the test Pagila.

Each example is copied to a temporary folder (the repository's copy never gets state) and
gets the environment its `.env.example` asks for: `*_HOST`, `*_PORT` and `*_PASSWORD` point at
the test server, other variables keep their example value. Then `dg check defs` must pass at
the example's root (project or workspace), and `dg list defs` must show assets in every project.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

pytestmark = pytest.mark.slow

EXAMPLES = REPO_ROOT / "examples"
DG = str(Path(sys.executable).with_name("dg"))
# `[tool.dg] directory_type = "project"` (a regex: tomllib needs Python 3.11).
_DG_PROJECT = re.compile(r'^directory_type\s*=\s*"project"', re.MULTILINE)
_DG_WORKSPACE = re.compile(r'^directory_type\s*=\s*"workspace"', re.MULTILINE)
IGNORED = shutil.ignore_patterns(".local_defs_state", "__pycache__", ".env", ".tmp*", "*.egg-info", "target", "logs")


def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if (p / "pyproject.toml").exists() or (p / "dg.toml").exists())


def dg_projects(root: Path) -> list[Path]:
    """Folders under `root` (itself included) whose pyproject.toml declares a dg project."""
    return [
        pyproject.parent
        for pyproject in sorted(root.rglob("pyproject.toml"))
        if _DG_PROJECT.search(pyproject.read_text())
    ]


def is_workspace(root: Path) -> bool:
    dg_toml = root / "dg.toml"
    return dg_toml.exists() and bool(_DG_WORKSPACE.search(dg_toml.read_text()))


def example_env(root: Path, target: PgTarget, dagster_home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([*(str(p / "src") for p in dg_projects(root)), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "VIRTUAL_ENV": sys.prefix,
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "COLUMNS": "200",
    }
    by_suffix = {"_HOST": target.host, "_PORT": str(target.port), "_PASSWORD": target.password}
    env_files = sorted(root.rglob(".env.example"))
    assert env_files, f"{root.name} has no .env.example telling users which variables to set"
    for env_file in env_files:
        for line in env_file.read_text().splitlines():
            name, sep, value = line.partition("=")
            name = name.strip()
            if not sep or name.startswith("#"):
                continue
            suffix = next((s for s in by_suffix if name.endswith(s)), None)
            env[name] = by_suffix[suffix] if suffix else value.strip()
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return env


def run_dg(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_there_are_examples() -> None:
    names = {p.name for p in example_dirs()}
    assert {"quickstart", "python_factory"} <= names, names


@pytest.mark.parametrize("example", example_dirs(), ids=lambda p: p.name)
def test_example_loads_with_dg(example: Path, pagila: PgTarget, tmp_path: Path) -> None:
    root = tmp_path / example.name
    shutil.copytree(example, root, ignore=IGNORED)
    env = example_env(root, pagila, tmp_path / "dagster_home")

    # A workspace's projects would each want their own .venv; the test venv has everything.
    venv = ["--use-active-venv"] if is_workspace(root) else []
    checked = run_dg(root, env, "check", "defs", *venv)
    assert checked.returncode == 0, f"`dg check defs` failed in {example.name}:\n{checked.stdout}\n{checked.stderr}"

    projects = dg_projects(root)
    assert projects, f"{example.name} contains no dg project"
    for project in projects:
        listed = run_dg(project, env, "list", "defs", "--json")
        assert listed.returncode == 0, f"`dg list defs` failed in {project}:\n{listed.stderr}"
        assets = json.loads(listed.stdout)["assets"]
        assert assets, f"{project.relative_to(tmp_path)} defines no asset"
        assert pagila.password not in listed.stdout + listed.stderr
