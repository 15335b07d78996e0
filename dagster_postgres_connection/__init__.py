"""dagster-postgres-connection: a PostgreSQL catalog as Dagster assets.

The public names are imported on first access (PEP 562), so that importing a submodule, e.g.
the CLI for `dagster-postgres-connection sync`, does not import `dagster` through this file.
`dir()` lists them all, which is how `dg` finds the component (`get_package_objects_in_module`).
"""

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_postgres_connection.version import __version__

if TYPE_CHECKING:
    from dagster_postgres_connection.catalog.models import (
        PostgresCatalogSnapshot as PostgresCatalogSnapshot,
        PostgresColumn as PostgresColumn,
        PostgresRelation as PostgresRelation,
        PostgresRelationKind as PostgresRelationKind,
    )
    from dagster_postgres_connection.components.connection_component.component import (
        PostgresConnectionComponent as PostgresConnectionComponent,
    )
    from dagster_postgres_connection.config import (
        NameFilter as NameFilter,
        PostgresConnectionSettings as PostgresConnectionSettings,
        PostgresFilters as PostgresFilters,
    )
    from dagster_postgres_connection.errors import (
        PostgresCatalogReadError as PostgresCatalogReadError,
        PostgresConfigError as PostgresConfigError,
        PostgresConnectionError as PostgresConnectionError,
        PostgresDatabaseUnavailableError as PostgresDatabaseUnavailableError,
        PostgresSnapshotError as PostgresSnapshotError,
        PostgresSyncRefusedError as PostgresSyncRefusedError,
        PostgresUnreachableError as PostgresUnreachableError,
    )
    from dagster_postgres_connection.factory import (
        build_postgres_connection_defs as build_postgres_connection_defs,
    )
    from dagster_postgres_connection.linking import (
        link_to_existing_assets as link_to_existing_assets,
    )
    from dagster_postgres_connection.metadata import (
        PostgresMetadataSet as PostgresMetadataSet,
    )
    from dagster_postgres_connection.observe.config import (
        PostgresProfilingSettings as PostgresProfilingSettings,
        PostgresSyncSettings as PostgresSyncSettings,
    )
    from dagster_postgres_connection.translator import (
        DagsterPostgresTranslator as DagsterPostgresTranslator,
        PostgresRelationProps as PostgresRelationProps,
    )

def _public_names() -> dict[str, str]:
    """Each public name and its module, read from the `TYPE_CHECKING` imports above: the one
    list of the public API, which type checkers see and this module exports lazily."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))  # `if TYPE_CHECKING:`
    return {
        alias.name: str(node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


_MODULE_OF = _public_names()

__all__ = [*sorted(_MODULE_OF), "__version__"]  # pyright: ignore[reportUnsupportedDunderAll]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
