"""dagster-postgres-connection: a PostgreSQL catalog as Dagster assets."""

from dagster_postgres_connection.catalog.models import (
    PostgresCatalogSnapshot as PostgresCatalogSnapshot,
)
from dagster_postgres_connection.catalog.models import (
    PostgresColumn as PostgresColumn,
)
from dagster_postgres_connection.catalog.models import (
    PostgresRelation as PostgresRelation,
)
from dagster_postgres_connection.catalog.models import (
    PostgresRelationKind as PostgresRelationKind,
)
from dagster_postgres_connection.components.connection_component.component import (
    PostgresConnectionComponent as PostgresConnectionComponent,
)
from dagster_postgres_connection.config import (
    NameFilter as NameFilter,
)
from dagster_postgres_connection.config import (
    PostgresConnectionSettings as PostgresConnectionSettings,
)
from dagster_postgres_connection.config import (
    PostgresFilters as PostgresFilters,
)
from dagster_postgres_connection.errors import (
    PostgresCatalogReadError as PostgresCatalogReadError,
)
from dagster_postgres_connection.errors import (
    PostgresConfigError as PostgresConfigError,
)
from dagster_postgres_connection.errors import (
    PostgresConnectionError as PostgresConnectionError,
)
from dagster_postgres_connection.errors import (
    PostgresSnapshotError as PostgresSnapshotError,
)
from dagster_postgres_connection.errors import (
    PostgresUnreachableError as PostgresUnreachableError,
)
from dagster_postgres_connection.factory import (
    build_postgres_connection_defs as build_postgres_connection_defs,
)
from dagster_postgres_connection.linking import (
    link_to_existing_assets as link_to_existing_assets,
)
from dagster_postgres_connection.translator import (
    DagsterPostgresTranslator as DagsterPostgresTranslator,
)
from dagster_postgres_connection.translator import (
    PostgresMetadataSet as PostgresMetadataSet,
)
from dagster_postgres_connection.translator import (
    PostgresRelationProps as PostgresRelationProps,
)
from dagster_postgres_connection.version import __version__ as __version__
