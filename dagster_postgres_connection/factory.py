"""build_postgres_connection_defs: the component's behaviour for projects without YAML."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import Definitions, EnvVar

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.config import (
    PostgresConnectionSettings,
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


def build_postgres_connection_settings(*, password: EnvVar, **settings: Any) -> PostgresConnectionSettings:
    """Validates Python keywords, the fields of `PostgresConnectionSettings`, into settings, with
    the same messages as the YAML component. `filters` may be a mapping like the YAML block."""
    if not isinstance(password, EnvVar):
        raise PostgresConfigError(
            '`password` must be `dg.EnvVar("NAME")`: the password is read from the environment when '
            "connecting and never held in code."
        )
    # `filters=None` means the default; a mapping is validated in place, so its errors say `filters.…`.
    values = {k: v for k, v in settings.items() if not (k == "filters" and v is None)}
    values["password"] = PostgresPassword(env_var=password.env_var_name)
    return validated(str(settings.get("name")), PostgresConnectionSettings, values)


def build_postgres_connection_defs(
    *,
    name: str,
    host: str,
    username: str,
    password: EnvVar,
    translator: DagsterPostgresTranslator | None = None,
    snapshot_path: str | Path | None = None,
    profiling: PostgresProfilingSettings | Mapping[str, Any] | None = None,
    **settings: Any,
) -> Definitions:
    """Definitions with one asset per selected relation of a Postgres server.

    Args:
        name: Connection name (asset group and first key part).
        host: Hostname or IP of the server (or a unix socket directory).
        username: Role to connect as; meant to be read-only.
        password: `dg.EnvVar("NAME")`; the variable is read when connecting.
        translator: A `DagsterPostgresTranslator` subclass instance to customise specs.
        snapshot_path: Where to keep the catalog snapshot. When the file exists the catalog is
            loaded from it without contacting Postgres (re-sync with `dagster-postgres-connection
            sync`); when it is missing, or no path is given, the catalog is read at load.
        profiling: A `PostgresProfilingSettings` or the YAML `profiling:` mapping: adds the
            `<name>_profile` job.
        settings: Every other field of `PostgresConnectionSettings` (`port`, `databases`,
            `filters` as a `PostgresFilters` or the YAML `filters:` mapping, timeouts, TLS,
            `expose_partitions`, `owners_by_role`, ...) and of `PostgresSyncSettings`
            (`sync_schedule`, `timezone`, `schema_checks`, ...): the YAML attributes of the same
            names, with the same defaults (README, "Configuration reference"). The sync job
            refreshes `snapshot_path`; without one it reports but remembers nothing between runs.

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
    sync_options = {key: settings.pop(key) for key in list(settings) if key in PostgresSyncSettings.model_fields}
    connection = build_postgres_connection_settings(
        name=name, host=host, username=username, password=password, **settings
    )
    sync = validated(name, PostgresSyncSettings, sync_options)
    if profiling is not None and not isinstance(profiling, PostgresProfilingSettings):
        profiling = validated(name, PostgresProfilingSettings, profiling, prefix="profiling.")
    path = Path(snapshot_path) if snapshot_path is not None else None
    if path is not None and path.exists():
        snapshot = load_snapshot(path)
    else:
        snapshot = read_catalog(connection)
        if path is not None:
            write_snapshot(snapshot, path)
    return build_connection_definitions(
        connection,
        snapshot,
        translator or DagsterPostgresTranslator(),
        sync=sync,
        profiling=profiling,
        snapshot_path=path,
        no_snapshot_path_reason="`build_postgres_connection_defs` got no `snapshot_path`; give one to keep the catalog and statistics between syncs",
    )
