"""dagster-postgres-connection: a PostgreSQL catalog as Dagster assets."""

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
from dagster_postgres_connection.version import __version__

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
