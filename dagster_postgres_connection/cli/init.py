"""`init NAME`: a complete `dg` project for one connection, whose code location is NAME.

One project per connection, each its own code location, is the Dagster+ Connections model;
inside a `dg` workspace the project goes to `projects/NAME` and is registered in `dg.toml`.
The `defs.yaml` is the scaffolder's (`render_defs_yaml`), so both ways of starting agree.
"""

import importlib.util
import keyword
from pathlib import Path
from typing import Any

import click
import tomlkit
from dagster_shared.utils.config import discover_config_file

from dagster_postgres_connection.cli._output import CliError, debug_option
from dagster_postgres_connection.components.connection_component.defs_yaml import (
    PostgresConnectionScaffolderParams,
    default_password_env_var,
    render_defs_yaml,
)
from dagster_postgres_connection.config import validate_connection_name

_PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
description = "Postgres connection `{name}`: its catalog as Dagster assets."
requires-python = ">=3.10"
dependencies = ["dagster-postgres-connection"]

[project.optional-dependencies]
dev = ["dagster-webserver", "dagster-dg-cli"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{name}"]

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "{name}"
# One connection per project, each its own code location, as in Dagster+ Connections.
code_location_name = "{name}"
"""

_DEFINITIONS = '''\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
'''

_ENV_EXAMPLE = """\
# Copy to .env and fill in: dg (and dagster-postgres-connection) read it; never commit .env.
{password_env_var}=
"""

_GITIGNORE = ".env\n.venv/\n__pycache__/\n*.egg-info/\n"

# What to run next in the project, as `init` prints it and the README's quickstart shows it (a
# test holds the two together): (command, comment). Inside the project, the commands find its
# defs.yaml themselves.
_NEXT_STEPS = (
    ('pip install -e ".[dev]"', "the project, with dg and the webserver (or: uv sync --extra dev)"),
    ("cp .env.example .env", "then set {password_env_var}"),
    ("dagster-postgres-connection check", "privileges, with the GRANTs that fix them"),
    ("dagster-postgres-connection preview", "what the filters select, and why"),
    ("dagster-postgres-connection sync", "read the catalog into the snapshot (or: dg utils refresh-defs-state)"),
    ("dg dev", "the assets in the UI, on http://localhost:3000"),
)


def next_steps(password_env_var: str) -> str:
    """The commands to run in a new project, one a line, each with its comment, aligned."""
    width = max(len(command) for command, _ in _NEXT_STEPS) + 2
    return "".join(
        f"{command.ljust(width)}# {comment.format(password_env_var=password_env_var)}\n"
        for command, comment in _NEXT_STEPS
    )


_README = """\
# {name}

The catalog of a Postgres server as Dagster assets (code location `{name}`).

```bash
{next_steps}```
"""

# The options of `dg scaffold defs`, whose defaults and descriptions these flags show.
_PARAMS = PostgresConnectionScaffolderParams.model_fields


@click.command()
@click.argument("name")
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to create the project. Default: `projects/NAME` in a dg workspace, else `./NAME`.")
@click.option("--host", default=_PARAMS["host"].default, show_default=True, help=_PARAMS["host"].description)
@click.option("--port", type=int, default=_PARAMS["port"].default, show_default=True, help=_PARAMS["port"].description)
@click.option("--username", default=_PARAMS["username"].default, show_default=True, help=_PARAMS["username"].description)
@click.option("--password-env-var", help=_PARAMS["password_env_var"].description)
@click.option("--database", "-d", "databases", multiple=True, help=_PARAMS["databases"].description)
@debug_option
def init(name: str, directory: Path | None, host: str, port: int, username: str,
         password_env_var: str | None, databases: tuple[str, ...]) -> None:
    """Create a dg project for a new connection NAME (also its code location name).

    Inside a dg workspace (a dg.toml with `directory_type = "workspace"` here or above), the
    project goes to `projects/NAME` and is added to the workspace's projects.
    """
    _check_name(name)
    workspace = _find_workspace(Path.cwd())
    target = (directory or (workspace.parent / "projects" / name if workspace else Path(name))).absolute()
    if target.exists() and any(target.iterdir()):
        raise CliError(f"`{target}` exists and is not empty.", hint="Choose another NAME or --directory.")
    params = PostgresConnectionScaffolderParams(
        host=host, port=port, username=username, password_env_var=password_env_var,
        databases=list(databases) or None,
    )
    env_var = password_env_var or default_password_env_var(name)
    defs_yaml = Path("src", name, "defs", name, "defs.yaml")
    steps = next_steps(env_var)
    files = {
        Path("pyproject.toml"): _PYPROJECT.format(name=name),
        Path("src", name, "__init__.py"): "",
        Path("src", name, "definitions.py"): _DEFINITIONS,
        Path("src", name, "defs", "__init__.py"): "",
        defs_yaml: render_defs_yaml(name, params),
        Path(".env.example"): _ENV_EXAMPLE.format(password_env_var=env_var),
        Path(".gitignore"): _GITIGNORE,
        Path("README.md"): _README.format(name=name, next_steps=steps),
    }
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    click.echo(f"Created project `{name}` in {target} (code location `{name}`).")
    if workspace and target.is_relative_to(workspace.parent):
        _add_to_workspace(workspace, target)
        click.echo(f"Added it to the workspace {workspace}.")
    click.echo(f"Next, in {target}:")
    click.echo(steps, nl=False)


def _check_name(name: str) -> None:
    try:
        validate_connection_name(name)
    except ValueError as error:
        raise CliError(str(error).replace("`name`", "NAME"), hint="e.g. `init pagila_prod`.") from None
    if not name.isidentifier() or keyword.iskeyword(name):
        raise CliError(f"NAME {name!r} is also the project's Python package: it must not start with a digit or be a keyword.")
    if importlib.util.find_spec(name) is not None:
        raise CliError(
            f"A Python module `{name}` already exists in this environment; the project's package would clash with it.",
            hint="Choose another NAME, e.g. with a `_prod` suffix.",
        )


def _find_workspace(start: Path) -> Path | None:
    return discover_config_file(start, lambda node: node.get("directory_type") == "workspace")


def _add_to_workspace(workspace: Path, project: Path) -> None:
    """Adds the project to `[workspace] projects`, keeping the file's comments and layout."""
    relative = project.relative_to(workspace.parent).as_posix()
    document = tomlkit.parse(workspace.read_text(encoding="utf-8"))
    section: Any = document.setdefault("workspace", tomlkit.table())
    projects = section.setdefault("projects", tomlkit.aot())
    if all(entry.get("path") != relative for entry in projects):
        projects.append({"path": relative})
    workspace.write_text(tomlkit.dumps(document), encoding="utf-8")
