"""Where a command's connection comes from: a component `defs.yaml`, or flags and `PG*` variables.

A `defs.yaml` is loaded the way `dg` loads it (`ComponentTree.for_project`), so `{{ env.X }}`,
`{{ env('X', 'default') }}`, validation and messages are the component's own; the project's
`.env` is read first, as `dg` does. Outside a `dg` project, the attributes are resolved by
`PostgresConnectionComponent.resolve_from_yaml`. Flags are validated like the Python factory
validates its arguments.

Only a `defs.yaml` needs `dagster` (the component, `ComponentTree`): it is imported there, so
that `sync` with flags runs without importing it (measured: 0.7 s and 30 MB less).
"""

import getpass
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import yaml
from click.core import ParameterSource
from dagster_shared.serdes.objects.models.defs_state_info import DefsStateManagementType
from dagster_shared.utils.config import discover_config_file, load_toml_as_dict
from dotenv import dotenv_values

from dagster_postgres_connection.cli._output import CliError, register_secret_env_var
from dagster_postgres_connection.config import (
    PostgresConnectionSettings,
    PostgresFilters,
    PostgresPassword,
    validated,
)
from dagster_postgres_connection.filter_hints import glob_warnings

if TYPE_CHECKING:
    from dagster_postgres_connection.components.connection_component.component import (
        PostgresConnectionComponent,
    )
    from dagster_postgres_connection.translator import DagsterPostgresTranslator

# `components.connection_component.scaffolder.COMPONENT_TYPE`, which imports dagster.
_COMPONENT_TYPE = "dagster_postgres_connection.PostgresConnectionComponent"

F = TypeVar("F", bound=Callable[..., Any])

_CONNECTION_FLAGS = ("host", "port", "username", "databases", "schemas", "password_env_var", "name")


@dataclass(frozen=True)
class CliConnection:
    """A resolved configuration, and where it came from."""

    settings: PostgresConnectionSettings
    component: "PostgresConnectionComponent | None" = None
    project_root: Path | None = None
    source: str = "flags"  # the defs.yaml path, for messages

    @property
    def translator(self) -> "DagsterPostgresTranslator":
        """The component's translator, or the default one for flags."""
        if self.component is not None:
            return self.component.translator
        from dagster_postgres_connection.translator import DagsterPostgresTranslator

        return DagsterPostgresTranslator()

    def state_path(self) -> Path:
        """Where the component keeps its snapshot: `<defs>/.local_defs_state/<key>/state`."""
        if self.component is None or self.project_root is None:
            raise CliError(
                "No snapshot location: this configuration does not come from a component in a dg project.",
                hint="Pass `--output PATH`, or the path of the connection's defs.yaml.",
            )
        config = self.component.defs_state_config
        if config.management_type != DefsStateManagementType.LOCAL_FILESYSTEM:
            raise CliError(
                f"Connection `{self.settings.name}` keeps its snapshot in Dagster's "
                f"{config.management_type.value} state storage, which only `dg` can write.",
                hint="Run `dg utils refresh-defs-state`, or pass `--output PATH`.",
            )
        from dagster.components.utils.project_paths import get_local_state_path

        return get_local_state_path(config.key, self.project_root)


def connection_options(command: F) -> F:
    """The configuration argument and flags shared by `check`, `preview` and `sync`."""
    options = [
        click.argument("config", required=False, type=click.Path(exists=True, path_type=Path)),
        click.option("--host", envvar="PGHOST", default="localhost", show_default=True,
                     help="Server host or unix socket directory [env: PGHOST]."),
        click.option("--port", envvar="PGPORT", type=int, default=PostgresConnectionSettings.model_fields["port"].default,
                     show_default=True, help="[env: PGPORT]"),
        click.option("--username", "-U", envvar="PGUSER", help="Role to connect as [env: PGUSER; default: your login]."),
        click.option("--database", "-d", "databases", multiple=True, envvar="PGDATABASE",
                     help="Database to read; repeat for several [env: PGDATABASE; default: all]."),
        click.option("--schema", "schemas", multiple=True,
                     help="Only schemas matching this regex; repeat for several (filters.schemas.include)."),
        click.option("--password-env-var", default="PGPASSWORD", show_default=True,
                     help="Name of the environment variable holding the password."),
        click.option("--name", default="postgres", show_default=True, help="Connection name (first part of asset keys)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def resolve_connection(config: Path | None, **flags: Any) -> CliConnection:
    """The `CONFIG` argument if given, else the flags (with their `PG*` defaults)."""
    connection = _resolve(config, flags)
    register_secret_env_var(connection.settings.password.env_var)
    for message in glob_warnings(connection.settings.filters):
        click.echo(click.style("warning", fg="yellow") + f": {message}", err=True)
    # A missing variable fails here, naming it (and its attribute), before connecting.
    if connection.component is not None and (problem := connection.component.password_variable_problem()):
        raise CliError(f"{problem}. Set it (e.g. in the project's `.env`) to the password of the connecting role.")
    connection.settings.password.get()
    return connection


def _resolve(config: Path | None, flags: dict[str, Any]) -> CliConnection:
    if config is None and not _typed_connection_flags():
        config = _defs_yaml_of_this_project(Path.cwd())
        if config is not None:
            click.echo(f"Using {_relative(config)} (the connection of this project)", err=True)
    if config is not None:
        _reject_flags_beside(config)
        return load_defs_yaml(config)
    name = flags["name"]
    settings = validated(
        name,
        PostgresConnectionSettings,
        {
            "name": name,
            "host": flags["host"],
            "port": flags["port"],
            "username": flags["username"] or getpass.getuser(),
            "password": PostgresPassword(env_var=flags["password_env_var"]),
            "databases": list(flags["databases"]) or None,
            "filters": PostgresFilters.model_validate({"schemas": {"include": list(flags["schemas"])}}),
        },
    )
    return CliConnection(settings=settings)


def _typed_connection_flags() -> list[str]:
    """The connection flags typed on the command line (PG* variables do not count)."""
    ctx = click.get_current_context()
    return [
        param.opts[0] for param in ctx.command.params
        if isinstance(param, click.Option) and param.name in _CONNECTION_FLAGS
        and ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE
    ]


# Folders never searched for a project's defs.yaml.
_NOT_SEARCHED = {"__pycache__", "node_modules", "build", "dist"}


def _defs_yaml_of_this_project(cwd: Path) -> Path | None:
    """Inside a dg project (or workspace) and without CONFIG or flags: its connection's defs.yaml.

    None outside a project or when it has no connection (the flags and PG* variables are used
    then); an error listing them when there are several, since guessing could check the wrong
    server.
    """
    root = discover_config_file(cwd, lambda node: isinstance(node.get("project"), dict)) or discover_config_file(
        cwd, lambda node: node.get("directory_type") == "workspace"
    )
    if root is None:
        return None
    found = []
    for folder, subfolders, files in os.walk(root.parent):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in _NOT_SEARCHED)
        for name in ("defs.yaml", "defs.yml"):
            if name in files and _declares_connection(Path(folder, name)):
                found.append(Path(folder, name))
    if len(found) > 1:
        kind = "project" if root.name != "dg.toml" or "project" in load_toml_as_dict(root) else "workspace"
        raise CliError(
            f"This {kind} has {len(found)} connections; name the one to use: "
            + ", ".join(f"`{_relative(path)}`" for path in found),
            hint=f"e.g. `dagster-postgres-connection {click.get_current_context().command.name} {_relative(found[0])}`.",
        )
    return found[0] if found else None


def _declares_connection(defs_yaml: Path) -> bool:
    try:
        documents = list(yaml.safe_load_all(defs_yaml.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        return False
    return any(isinstance(d, dict) and str(d.get("type", "")).endswith("PostgresConnectionComponent") for d in documents)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _reject_flags_beside(config: Path) -> None:
    """Flags typed with a CONFIG would be silently ignored: say so instead (PG* variables are fine)."""
    typed = _typed_connection_flags()
    if typed:
        raise CliError(
            f"{', '.join(typed)} cannot be combined with the configuration `{config}`.",
            hint="Change the defs.yaml (or its environment variables), or leave CONFIG out and use only flags.",
        )


def find_defs_yaml(path: Path) -> Path:
    if path.is_dir():
        for candidate in (path / "defs.yaml", path / "defs.yml"):
            if candidate.is_file():
                return candidate.resolve()
        raise CliError(f"No defs.yaml in `{path}`.", hint="Pass the path of a connection's defs.yaml or of its folder.")
    return path.resolve()


def load_defs_yaml(path: Path) -> CliConnection:
    """Loads the component of `path` (a defs.yaml or its folder) as `dg` would."""
    defs_yaml = find_defs_yaml(path)
    documents = [d for d in yaml.safe_load_all(defs_yaml.read_text(encoding="utf-8")) if d]
    ours = [d for d in documents if isinstance(d, dict) and str(d.get("type", "")).endswith("PostgresConnectionComponent")]
    if len(ours) != 1:
        raise CliError(
            f"`{defs_yaml}` holds {len(ours)} PostgresConnectionComponent documents; expected one.",
            hint=f"Point at a defs.yaml with `type: {_COMPONENT_TYPE}`.",
        )
    from dagster.components.core.component_tree import ComponentTree, ComponentTreeException

    from dagster_postgres_connection.components.connection_component.component import (
        PostgresConnectionComponent,
    )

    project_config = discover_config_file(defs_yaml.parent, lambda node: isinstance(node.get("project"), dict))
    if project_config is None:
        _load_dotenv(defs_yaml.parent)
        component = PostgresConnectionComponent.resolve_from_yaml(yaml.safe_dump(ours[0].get("attributes") or {}))
        return CliConnection(settings=component.settings, component=component, source=str(defs_yaml))
    project_root = project_config.parent
    _load_dotenv(project_root)
    _make_importable(project_config)
    tree = ComponentTree.for_project(defs_yaml)
    try:
        loaded = tree.load_component(defs_yaml.parent)
    except ComponentTreeException as error:
        raise _root_cause(error, ComponentTreeException) from None
    component = loaded if isinstance(loaded, PostgresConnectionComponent) else next(
        (c for c in getattr(loaded, "components", ()) if isinstance(c, PostgresConnectionComponent)), None
    )
    if component is None:
        raise CliError(f"`{defs_yaml}` does not load a PostgresConnectionComponent.")
    return CliConnection(settings=component.settings, component=component, project_root=project_root,
                         source=str(defs_yaml))


def _project_section(config_file: Path) -> dict[str, Any]:
    """`[project]` of a dg.toml, `[tool.dg.project]` of a pyproject.toml."""
    toml = load_toml_as_dict(config_file)
    node = toml if config_file.name == "dg.toml" else toml.get("tool", {}).get("dg", {})
    return node.get("project") or {}


def _load_dotenv(folder: Path) -> None:
    """Like `dg`: the project's `.env` fills in variables the environment does not set."""
    env_file = folder / ".env"
    if env_file.is_file():
        for key, value in dotenv_values(env_file).items():
            if value is not None:
                os.environ.setdefault(key, value)


def _make_importable(project_config: Path) -> None:
    """A project that is not installed is imported from its folder, as `dg dev` would."""
    section = _project_section(project_config)
    root_module = str(section.get("root_module") or str(section.get("defs_module", "")).split(".")[0])
    if not root_module:
        return
    try:
        importlib.import_module(root_module)
    except ModuleNotFoundError as error:
        if error.name != root_module:
            raise
        for folder in (project_config.parent / "src", project_config.parent):
            if (folder / root_module).is_dir():
                sys.path.insert(0, str(folder))
                importlib.invalidate_caches()
                return


def _root_cause(error: BaseException, wrapper: type[BaseException]) -> BaseException:
    """Dagster wraps a component's load error in a tree drawing; the cause says what is wrong."""
    while isinstance(error, wrapper) and error.__cause__ is not None:
        error = error.__cause__
    return error
