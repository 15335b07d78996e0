"""build_postgres_connection_defs: the component's behaviour for projects without YAML."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import Definitions, EnvVar

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.config import (
    PostgresConnectionSettings,
    PostgresFilters,
    PostgresPassword,
    validated,
)
from dagster_postgres_connection.definitions import build_connection_definitions
from dagster_postgres_connection.errors import PostgresConfigError
from dagster_postgres_connection.observe.config import (
    PostgresProfilingSettings,
    PostgresSyncSettings,
)
from dagster_postgres_connection.translator import DagsterPostgresTranslator


def build_postgres_connection_settings(
    *,
    name: str,
    host: str,
    username: str,
    password: EnvVar,
    port: int = 5432,
    databases: Sequence[str] | None = None,
    filters: PostgresFilters | Mapping[str, Any] | None = None,
    **options: Any,
) -> PostgresConnectionSettings:
    """Validates Python arguments into settings, with the same messages as the YAML component."""
    if not isinstance(password, EnvVar):
        raise PostgresConfigError(
            '`password` must be `dg.EnvVar("NAME")`: the password is read from the environment when '
            "connecting and never held in code."
        )
    return validated(
        name,
        PostgresConnectionSettings,
        {
            "name": name,
            "host": host,
            "port": port,
            "username": username,
            "password": PostgresPassword(env_var=password.env_var_name),
            "databases": databases,
            # A mapping is validated in place, so its errors say `filters.…`.
            "filters": filters or PostgresFilters(),
            **options,
        },
    )


def build_postgres_connection_defs(
    *,
    name: str,
    host: str,
    username: str,
    password: EnvVar,
    port: int = 5432,
    databases: Sequence[str] | None = None,
    filters: PostgresFilters | Mapping[str, Any] | None = None,
    translator: DagsterPostgresTranslator | None = None,
    snapshot_path: str | Path | None = None,
    profiling: PostgresProfilingSettings | Mapping[str, Any] | None = None,
    **options: Any,
) -> Definitions:
    """Definitions with one asset per selected relation of a Postgres server.

    Args:
        name: Connection name (asset group and first key part).
        password: `dg.EnvVar("NAME")`; the variable is read when connecting.
        filters: A `PostgresFilters` or the same mapping as the YAML `filters:` block.
        translator: A `DagsterPostgresTranslator` subclass instance to customise specs.
        snapshot_path: Where to keep the catalog snapshot. When the file exists the catalog is
            loaded from it without contacting Postgres (re-sync with `dagster-postgres-connection
            sync`); when it is missing, or no path is given, the catalog is read at load.
        profiling: A `PostgresProfilingSettings` or the YAML `profiling:` mapping: adds the
            `<name>_profile` job.
        options: Other settings: `connect_timeout_seconds`, `statement_timeout_seconds`,
            `lock_timeout_seconds`, `sslmode`, `sslrootcert`, `max_concurrent_connections`,
            `expose_partitions` (partitions as assets of their own), `owners_by_role`
            (`{"postgres_role": "team:x"}`), and those of the `<name>_sync` job (`PostgresSyncSettings`): `sync_schedule`,
            `timezone`, `emit_materializations`, `unchanged_relations`,
            `exact_row_count_threshold`, `mass_disappearance_threshold`,
            `schema_check_severity`, `schema_checks` (`False`: no `schema_unchanged` checks,
            cheaper to load at thousands of assets; the sync job still logs schema changes).
            The sync job refreshes `snapshot_path`; without one it reports but remembers
            nothing between runs.

    Example:
        .. code-block:: python

            import dagster as dg
            from dagster_postgres_connection import build_postgres_connection_defs

            defs = build_postgres_connection_defs(
                name="pagila_prod",
                host="localhost",
                username="dagster_reader",
                password=dg.EnvVar("POSTGRES_CONNECTION_PASSWORD"),
                databases=["pagila"],
                snapshot_path="catalog_snapshot.json",
            )
    """
    sync_options = {key: options.pop(key) for key in list(options) if key in PostgresSyncSettings.model_fields}
    settings = build_postgres_connection_settings(
        name=name, host=host, username=username, password=password, port=port,
        databases=databases, filters=filters, **options,
    )
    sync = validated(name, PostgresSyncSettings, sync_options)
    if profiling is not None and not isinstance(profiling, PostgresProfilingSettings):
        profiling = validated(name, PostgresProfilingSettings, profiling, prefix="profiling.")
    path = Path(snapshot_path) if snapshot_path is not None else None
    if path is not None and path.exists():
        snapshot = load_snapshot(path)
    else:
        snapshot = read_catalog(settings)
        if path is not None:
            write_snapshot(snapshot, path)
    return build_connection_definitions(
        settings,
        snapshot,
        translator or DagsterPostgresTranslator(),
        sync=sync,
        profiling=profiling,
        snapshot_path=path,
        no_snapshot_path_reason="`build_postgres_connection_defs` got no `snapshot_path`; give one to keep the catalog and statistics between syncs",
    )
