"""Assembling a connection's Definitions; shared by the component and the Python factory."""

import time

from dagster import Definitions, get_dagster_logger

from dagster_postgres_connection.assets import build_asset_specs
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.catalog.reader import selection_fingerprint
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.translator import DagsterPostgresTranslator


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def build_connection_definitions(
    settings: PostgresConnectionSettings,
    snapshot: PostgresCatalogSnapshot,
    translator: DagsterPostgresTranslator,
) -> Definitions:
    log = get_dagster_logger()
    if snapshot.selection_fingerprint and snapshot.selection_fingerprint != selection_fingerprint(settings):
        log.warning(
            f"The `databases`/`filters` of connection `{settings.name}` changed since its catalog "
            f"snapshot was taken {describe_age(time.time() - snapshot.captured_at)} ago: relations "
            f"that are newly selected appear after a re-sync (`dg utils refresh-defs-state`)."
        )
    specs = build_asset_specs(snapshot, settings, translator)
    if not specs:
        log.warning(
            f"Connection `{settings.name}` selects no relation from its snapshot "
            f"({len(snapshot.relations())} relations read, {len(snapshot.skipped)} skipped): check "
            f"`databases` and `filters`, or run `dagster-postgres-connection preview`."
        )
    return Definitions(assets=specs)
