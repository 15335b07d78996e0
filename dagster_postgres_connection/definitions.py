"""Assembling a connection's Definitions; shared by the component and the Python factory."""

import os
import time
from pathlib import Path

from dagster import AssetSpec, Definitions

from dagster_postgres_connection.assets import build_relation_specs
from dagster_postgres_connection.catalog._gc import paused_gc
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.catalog.reader import selection_fingerprint
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.filter_hints import glob_warnings
from dagster_postgres_connection.load_warnings import (
    ignore_check_conversion_beta_warning,
    warn_at_load,
)
from dagster_postgres_connection.metadata import PostgresMetadataSet, routine_listing
from dagster_postgres_connection.observe.config import (
    PostgresProfilingSettings,
    PostgresSyncSettings,
)
from dagster_postgres_connection.observe.sync import PostgresSyncTarget
from dagster_postgres_connection.observe.sync_job import build_observe_definitions
from dagster_postgres_connection.observe.versions import ChangeWatch
from dagster_postgres_connection.translator import DagsterPostgresTranslator, PostgresRelationProps

# Every load of a connection's checks would show Dagster's own BetaWarning (see load_warnings.py).
ignore_check_conversion_beta_warning()


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def with_freshness_policies(
    pairs: list[tuple[PostgresRelationProps, AssetSpec]], sync: PostgresSyncSettings
) -> list[tuple[PostgresRelationProps, AssetSpec]]:
    """Each spec with the `FreshnessPolicy` of the first `freshness` rule matching its relation,
    unless the translator already gave it one."""
    if not sync.freshness:
        return pairs
    result = []
    for props, spec in pairs:
        rule = next((r for r in sync.freshness if r.matches(props.database, props.schema, props.name)), None)
        if rule is not None and spec.freshness_policy is None:
            spec = spec.replace_attributes(freshness_policy=rule.policy)
        result.append((props, spec))
    return result


# What a code server sends the webserver per asset and per column (`RepositorySnap`, serialized),
# fitted on generated catalogs: 78.9 MB for 11,074 assets with 154,562 columns (estimate 78.7),
# 394 MB for 55,354 with 762,958 (estimate 390): column schema, metadata, asset node, check.
_SNAPSHOT_BYTES_PER_ASSET = 1_800
_SNAPSHOT_BYTES_PER_COLUMN = 380
# Dagster's default for both `DAGSTER_GRPC_MAX_SEND_BYTES` and `DAGSTER_GRPC_MAX_RX_BYTES`.
_GRPC_DEFAULT_MAX_BYTES = 100 * 10**6


def snapshot_bytes_estimate(pairs: list[tuple[PostgresRelationProps, AssetSpec]]) -> int:
    """About how many bytes these assets add to the code location snapshot a code server sends."""
    columns = sum(len(props.relation.columns) for props, _ in pairs)
    return _SNAPSHOT_BYTES_PER_ASSET * len(pairs) + _SNAPSHOT_BYTES_PER_COLUMN * columns


def grpc_limit_warning(name: str, assets: int, estimate: int) -> str | None:
    """A warning when the code location's snapshot may exceed the code server's gRPC message limit.

    Past it the webserver cannot show the location at all, with gRPC's `RESOURCE_EXHAUSTED` in
    its log and nothing naming the cause; said at load, where the operator reads it. Warned
    from 80 % of the limit (the estimate is within a few % on generated catalogs).
    """
    variable = os.environ.get("DAGSTER_GRPC_MAX_SEND_BYTES", "")
    limit = int(variable) if variable.isdigit() else _GRPC_DEFAULT_MAX_BYTES
    if estimate < 0.8 * limit:
        return None
    suggested = 10 ** len(str(2 * estimate))  # a round number above twice the estimate
    return (
        f"Connection `{name}`: its {assets:,} assets make a code location snapshot of about "
        f"{estimate / 1e6:,.0f} MB, and a code server sends at most {limit / 1e6:,.0f} MB per gRPC "
        f"message: the webserver and the daemon may fail to load this location "
        f"(`RESOURCE_EXHAUSTED` in their logs). Set `DAGSTER_GRPC_MAX_SEND_BYTES` on the code "
        f"server and `DAGSTER_GRPC_MAX_RX_BYTES` on the webserver and the daemon above that, e.g. "
        f"{suggested}, or select fewer relations with `filters`."
    )


@paused_gc()  # ~11k specs with ~150k column records at 10k tables (see catalog/_gc.py)
def build_connection_definitions(
    settings: PostgresConnectionSettings,
    snapshot: PostgresCatalogSnapshot,
    translator: DagsterPostgresTranslator,
    *,
    sync: PostgresSyncSettings | None = None,
    profiling: PostgresProfilingSettings | None = None,
    snapshot_path: Path | None = None,
    no_snapshot_path_reason: str = "there is no snapshot file to refresh",
    versioned_state_key: str | None = None,
) -> Definitions:
    """Assets, plus the sync job, its schedule, the `schema_unchanged` checks and the profile job.

    Args:
        snapshot_path: The snapshot file the sync job refreshes (None: it refreshes nothing,
            for the reason given in `no_snapshot_path_reason`).
        versioned_state_key: The component's `defs_state` key when its state lives in the
            instance's `defs_state_storage`: the sync job writes new versions there.
    """
    # Again here: Dagster may import this module inside a `warnings.catch_warnings()` block,
    # which drops the filter when it ends.
    ignore_check_conversion_beta_warning()
    for message in glob_warnings(settings.filters):
        warn_at_load(message)
    if snapshot.selection_fingerprint and snapshot.selection_fingerprint != selection_fingerprint(settings):
        warn_at_load(
            f"The `databases`/`filters` of connection `{settings.name}` changed since its catalog "
            f"snapshot was taken {describe_age(time.time() - snapshot.captured_at)} ago: relations "
            f"that are newly selected appear after a re-sync (`dg utils refresh-defs-state`)."
        )
    sync = sync or PostgresSyncSettings()
    pairs = with_freshness_policies(build_relation_specs(snapshot, settings, translator), sync)
    specs = [spec for _, spec in pairs]
    if not specs:
        warn_at_load(
            f"Connection `{settings.name}` selects no relation from its snapshot "
            f"({len(snapshot.relations())} relations read, {len(snapshot.skipped)} skipped): check "
            f"`databases` and `filters`, or run `dagster-postgres-connection preview`."
        )
    if message := grpc_limit_warning(settings.name, len(pairs), snapshot_bytes_estimate(pairs)):
        warn_at_load(message)
    asset_keys = {(props.database, props.schema, props.name): spec.key for props, spec in pairs}
    target = PostgresSyncTarget(
        settings=settings,
        sync=sync,
        # A file can be read again when a run needs it: the code server keeps only the specs.
        loaded_snapshot=(
            None
            if versioned_state_key is not None or (snapshot_path is not None and snapshot_path.exists())
            else snapshot
        ),
        asset_keys=asset_keys,
        snapshot_path=snapshot_path,
        no_snapshot_path_reason=no_snapshot_path_reason,
        versioned_state_key=versioned_state_key,
        # Computed here, where the snapshot is at hand: the sensor's ticks never load it.
        change_watch=ChangeWatch.of(snapshot.relations(), asset_keys) if sync.change_sensor else None,
    )
    # Routines are no assets: the sync job, which stands for the connection, lists them.
    databases = [d for d in snapshot.databases if not settings.databases or d.name in settings.databases]
    routines = routine_listing(databases, settings.filters)
    job_metadata = {f"{PostgresMetadataSet.namespace()}/routines": routines} if routines else None
    return Definitions.merge(Definitions(assets=specs), build_observe_definitions(target, profiling, job_metadata))
