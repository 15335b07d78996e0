"""A throwaway `dg` project holding one `PostgresConnectionComponent`, as a user's project does
(or, for the benchmark's content floor, another component type: `write_component_project`).

Used by the benchmark's load rows (`probes.py`, `serve.py`) and by the load-scaling guard in the
test suite (`dagster_postgres_connection_tests/test_load_scaling.py`): every load there goes
through a `defs.yaml` and `dg.load_from_defs_folder`, the path of `dg dev` and every code
server, not through the Python factory (benchmarks/README.md, "Component path ≠ factory path").
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPONENT_TYPE = "dagster_postgres_connection.PostgresConnectionComponent"

_DEFINITIONS_PY = '''\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
'''


@dataclass(frozen=True)
class DgProject:
    """Where the generated project lives; `module` is its root module (under `src/`)."""

    root: Path
    module: str
    connection: str

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def definitions_module(self) -> str:
        return f"{self.module}.definitions"

    @property
    def state_key(self) -> str:
        """The component's `defs_state_config.key`."""
        return f"PostgresConnectionComponent[{self.connection}]"

    @property
    def state_path(self) -> Path:
        """Where the component reads its snapshot (LOCAL_FILESYSTEM state).

        Dagster finds it by importing the project's defs module, so `src` goes on `sys.path`
        first, and a module of that name imported before (the same module name at another size,
        in another folder) is forgotten: otherwise the path would point into that older project,
        and this one's loads would find no snapshot and read Postgres.
        """
        from dagster.components.utils.project_paths import get_local_state_path

        for name in [m for m in sys.modules if m == self.module or m.startswith(f"{self.module}.")]:
            del sys.modules[name]
        if str(self.src) in sys.path:
            sys.path.remove(str(self.src))
        sys.path.insert(0, str(self.src))
        importlib.invalidate_caches()
        path = get_local_state_path(self.state_key, self.root)
        if not path.is_relative_to(self.root):
            raise RuntimeError(f"the state path {path} is outside the project {self.root}")
        return path


def write_dg_project(
    root: Path,
    *,
    module: str,
    connection: str,
    host: str,
    port: int,
    username: str,
    password_env_var: str,
    databases: Sequence[str],
    extra_attributes: Mapping[str, Any] | None = None,
) -> DgProject:
    """Writes `pyproject.toml` ([tool.dg] project), `src/<module>/definitions.py` calling
    `dg.load_from_defs_folder`, and `src/<module>/defs/<connection>/defs.yaml` configuring
    `PostgresConnectionComponent`.

    The project is not installed: put `src` on `sys.path` (or `PYTHONPATH`) to load it.
    """
    attributes = {
        "name": connection,
        "host": host,
        "port": port,
        "username": username,
        "password_env_var": password_env_var,
        "databases": list(databases),
        **(extra_attributes or {}),
    }
    return write_component_project(
        root, module=module, connection=connection, component_type=COMPONENT_TYPE, attributes=attributes
    )


def write_component_project(
    root: Path, *, module: str, connection: str, component_type: str, attributes: Mapping[str, Any]
) -> DgProject:
    """The same project with a `defs.yaml` declaring any component type (e.g. the benchmark's
    `content_floor.ContentFloorComponent`) in `src/<module>/defs/<connection>/`; `connection` is
    also the code location's name. The type's module must be importable where the project loads.
    """
    package = root / "src" / module
    defs_dir = package / "defs" / connection
    defs_dir.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{module}"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["dagster-postgres-connection"]\n\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[tool.dg]\ndirectory_type = "project"\n\n'
        f'[tool.dg.project]\nroot_module = "{module}"\ncode_location_name = "{connection}"\n'
    )
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(_DEFINITIONS_PY)
    # JSON is YAML: no YAML writer needed.
    (defs_dir / "defs.yaml").write_text(
        f"type: {component_type}\n\nattributes: {json.dumps(dict(attributes))}\n"
    )
    return DgProject(root=root, module=module, connection=connection)
