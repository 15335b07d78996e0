"""dagster-postgres-connection: a PostgreSQL catalog as Dagster assets.

The public names are imported on first access (PEP 562), so that importing a submodule, e.g.
the CLI for `dagster-postgres-connection sync`, does not import `dagster` through this file.
`dir()` lists them all, which is how `dg` finds the component (`get_package_objects_in_module`).
"""

import importlib
from typing import TYPE_CHECKING, Any

from dagster_postgres_connection.version import __version__

if TYPE_CHECKING:
    from dagster_postgres_connection.catalog.models import (
        PostgresCatalogSnapshot,
        PostgresColumn,
        PostgresRelation,
        PostgresRelationKind,
    )
    from dagster_postgres_connection.components.connection_component.component import (
        PostgresConnectionComponent,
    )
    from dagster_postgres_connection.config import (
        NameFilter,
        PostgresConnectionSettings,
        PostgresFilters,
    )
    from dagster_postgres_connection.errors import (
        PostgresCatalogReadError,
        PostgresConfigError,
        PostgresConnectionError,
        PostgresDatabaseUnavailableError,
        PostgresSnapshotError,
        PostgresSyncRefusedError,
        PostgresUnreachableError,
    )
    from dagster_postgres_connection.factory import build_postgres_connection_defs
    from dagster_postgres_connection.linking import link_to_existing_assets
    from dagster_postgres_connection.observe.config import (
        PostgresProfilingSettings,
        PostgresSyncSettings,
    )
    from dagster_postgres_connection.translator import (
        DagsterPostgresTranslator,
        PostgresMetadataSet,
        PostgresRelationProps,
    )

_MODULE_OF: dict[str, str] = {
    "DagsterPostgresTranslator": "dagster_postgres_connection.translator",
    "NameFilter": "dagster_postgres_connection.config",
    "PostgresCatalogReadError": "dagster_postgres_connection.errors",
    "PostgresCatalogSnapshot": "dagster_postgres_connection.catalog.models",
    "PostgresColumn": "dagster_postgres_connection.catalog.models",
    "PostgresConfigError": "dagster_postgres_connection.errors",
    "PostgresConnectionComponent": "dagster_postgres_connection.components.connection_component.component",
    "PostgresConnectionError": "dagster_postgres_connection.errors",
    "PostgresConnectionSettings": "dagster_postgres_connection.config",
    "PostgresDatabaseUnavailableError": "dagster_postgres_connection.errors",
    "PostgresFilters": "dagster_postgres_connection.config",
    "PostgresMetadataSet": "dagster_postgres_connection.translator",
    "PostgresProfilingSettings": "dagster_postgres_connection.observe.config",
    "PostgresRelation": "dagster_postgres_connection.catalog.models",
    "PostgresRelationKind": "dagster_postgres_connection.catalog.models",
    "PostgresRelationProps": "dagster_postgres_connection.translator",
    "PostgresSnapshotError": "dagster_postgres_connection.errors",
    "PostgresSyncRefusedError": "dagster_postgres_connection.errors",
    "PostgresSyncSettings": "dagster_postgres_connection.observe.config",
    "PostgresUnreachableError": "dagster_postgres_connection.errors",
    "build_postgres_connection_defs": "dagster_postgres_connection.factory",
    "link_to_existing_assets": "dagster_postgres_connection.linking",
}

__all__ = [
    "DagsterPostgresTranslator",
    "NameFilter",
    "PostgresCatalogReadError",
    "PostgresCatalogSnapshot",
    "PostgresColumn",
    "PostgresConfigError",
    "PostgresConnectionComponent",
    "PostgresConnectionError",
    "PostgresConnectionSettings",
    "PostgresDatabaseUnavailableError",
    "PostgresFilters",
    "PostgresMetadataSet",
    "PostgresProfilingSettings",
    "PostgresRelation",
    "PostgresRelationKind",
    "PostgresRelationProps",
    "PostgresSnapshotError",
    "PostgresSyncRefusedError",
    "PostgresSyncSettings",
    "PostgresUnreachableError",
    "__version__",
    "build_postgres_connection_defs",
    "link_to_existing_assets",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
