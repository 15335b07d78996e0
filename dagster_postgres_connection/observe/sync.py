"""One sync: re-read the catalog, measure what changed, compare, report, and keep the result.

Order matters. Everything is read and compared before anything is reported or written, so a
refused sync (mass disappearance) changes nothing. The catalog is read in full only when one
statement per database says it changed since the previous snapshot (`catalog/fingerprint.py`);
otherwise that snapshot stands, is not rewritten, and only the statistics are read. Events are yielded before the snapshot and
statistics are written: if writing fails, the next sync reports the same changes again rather
than never.
"""

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    DagsterRun,
    MetadataValue,
    Output,
    get_dagster_logger,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster_shared.record import copy

from dagster_postgres_connection.assets import relation_props
from dagster_postgres_connection.catalog.fingerprint import check_unchanged
from dagster_postgres_connection.catalog.models import (
    PostgresCatalogSnapshot,
    PostgresRelation,
    RelationKey,
)
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.catalog.summary import SnapshotSummary
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.errors import PostgresSnapshotError, PostgresSyncRefusedError
from dagster_postgres_connection.observe.config import PostgresSyncSettings
from dagster_postgres_connection.observe.events import (
    SCHEMA_CHECK_NAME,
    data_event,
    schema_check_outcome,
    view_event,
)
from dagster_postgres_connection.observe.health import health_moved
from dagster_postgres_connection.observe.schema_changes import CatalogDiff, diff_catalogs
from dagster_postgres_connection.observe.state import (
    PostgresRelationStatistics,
    PostgresSyncStatistics,
    load_statistics,
    statistics_path,
    view_version_key,
    write_statistics,
)
from dagster_postgres_connection.observe.statistics import read_statistics
from dagster_postgres_connection.observe.versioned_state import (
    load_instance_statistics,
    load_latest_snapshot,
    reload_code_location,
    state_storage_of,
    write_instance_statistics,
    write_snapshot_version,
)
from dagster_postgres_connection.observe.versions import ChangeWatch, with_view_versions

SyncEvent = AssetObservation | AssetMaterialization | AssetCheckEvaluation | Output

# Check keys per query when asking the instance for the latest check executions.
_CHECK_STATUS_BATCH = 500


@dataclass(frozen=True)
class PostgresSyncTarget:
    """What a connection's sync job works on, fixed when the code location loads.

    Args:
        loaded_snapshot: The snapshot the code location loaded, kept only when there is no
            `snapshot_path` to read it from again.
        snapshot_path: The snapshot file the code location loads from, rewritten by each sync
            (statistics go beside it). None when there is no local file to refresh.
        versioned_state_key: The `defs_state` key of a component whose state lives in the
            instance's `defs_state_storage` (VERSIONED_STATE_STORAGE): each sync that finds the
            catalog changed writes a new version there, keeps its statistics in the instance,
            and asks the code server to reload (`observe/versioned_state.py`).
            With neither (a factory without `snapshot_path`), the sync reports, compares with
            the loaded snapshot, and keeps nothing.
        asset_keys: The asset key of each relation that is an asset in this code location.
    """

    settings: PostgresConnectionSettings
    sync: PostgresSyncSettings
    loaded_snapshot: PostgresCatalogSnapshot | None
    asset_keys: Mapping[RelationKey, AssetKey]
    snapshot_path: Path | None
    no_snapshot_path_reason: str = ""
    versioned_state_key: str | None = None
    # What `<name>_change_sensor` reads; set when `change_sensor` is configured.
    change_watch: ChangeWatch | None = None

    @property
    def severity(self) -> AssetCheckSeverity:
        return AssetCheckSeverity(self.sync.schema_check_severity)

    def previous_snapshot(self, instance: DagsterInstance | None = None) -> PostgresCatalogSnapshot:
        """The last sync's snapshot: the latest state version or the file when there is one,
        else what was loaded.

        A code server does not keep the snapshot it loaded from a file or a state version
        (~100 MB of records at 10,000 tables); the sync and check runs read it again, as it is now.
        """
        if self.versioned_state_key is not None:
            storage = state_storage_of(instance, self.settings.name)
            latest = load_latest_snapshot(storage, self.versioned_state_key)
            if latest is None:
                raise PostgresSnapshotError(
                    f"Connection `{self.settings.name}` has no catalog snapshot under "
                    f"`{self.versioned_state_key}` in the instance's defs state storage: run "
                    f"`dg utils refresh-defs-state` with this deployment's DAGSTER_HOME."
                )
            return latest
        if self.snapshot_path is not None and self.snapshot_path.exists():
            return load_snapshot(self.snapshot_path)
        if self.loaded_snapshot is None:
            raise PostgresSnapshotError(
                f"The catalog snapshot `{self.snapshot_path}` of connection `{self.settings.name}` "
                f"is gone: run `dg utils refresh-defs-state` (or `dagster-postgres-connection sync`)."
            )
        return self.loaded_snapshot


def selected_relations(
    snapshot: PostgresCatalogSnapshot, settings: PostgresConnectionSettings
) -> dict[RelationKey, PostgresRelation]:
    """The relations the configuration makes assets of, by `(database, schema, name)`."""
    return {
        (props.database, props.schema, props.name): props.relation
        for props in relation_props(snapshot, settings)
    }


def compare_catalogs(
    target: PostgresSyncTarget,
    before: Mapping[RelationKey, PostgresRelation],
    after: Mapping[RelationKey, PostgresRelation],
    *,
    previous_oids: Mapping[RelationKey, int],
    current_oids: Mapping[RelationKey, int],
    force: bool,
) -> CatalogDiff:
    """The diff, or `PostgresSyncRefusedError` when too many relations vanished at once."""
    diff = diff_catalogs(before, after, previous_oids=previous_oids, current_oids=current_oids)
    threshold = target.sync.mass_disappearance_threshold
    if before and len(diff.dropped) / len(before) > threshold:
        message = (
            f"Sync of connection `{target.settings.name}`: {len(diff.dropped)} of {len(before)} "
            f"relations ({len(diff.dropped) / len(before):.0%}) vanished since the previous sync, "
            f"more than `mass_disappearance_threshold` ({threshold:.0%}); e.g. "
            + ", ".join(f"`{'.'.join(key)}`" for key in diff.dropped[:5])
            + ". This usually means revoked privileges, a wrong database or a failed restore"
        )
        if not force:
            raise PostgresSyncRefusedError(
                f"{message}. The snapshot was kept. If the drop is intended, launch the job "
                f"`{sync_job_name(target.settings.name)}` with run config "
                f"`ops: {{{sync_op_name(target.settings.name)}: {{config: {{force: true}}}}}}`."
            )
        get_dagster_logger().warning(f"{message}; forced, so the snapshot is replaced.")
    return diff


def sync_job_name(connection_name: str) -> str:
    """`<connection>_sync`: the name of the sync job."""
    return f"{connection_name}_sync"


def sync_op_name(connection_name: str) -> str:
    """`<connection>_sync_op`: its one op, which takes the `force` run config. (Dagster wants
    op names unique in a code location, distinct from job names too.)"""
    return f"{connection_name}_sync_op"


def run_sync(
    target: PostgresSyncTarget,
    *,
    instance: DagsterInstance,
    force: bool = False,
    run: DagsterRun | None = None,
) -> Iterator[SyncEvent]:
    """Everything one sync run reports, in order; writes the snapshot and statistics last.

    Args:
        run: The sync's run, whose code server is asked to reload after a versioned state
            write that created, dropped, renamed or reshaped relations.
    """
    log = get_dagster_logger()
    started = time.perf_counter()
    now = time.time()
    previous = target.previous_snapshot(instance)
    before = selected_relations(previous, target.settings)
    check = check_unchanged(target.settings, SnapshotSummary.of(previous))
    if check.unchanged:
        log.info(f"Catalog of connection `{target.settings.name}` unchanged since its snapshot: not read again.")
        current = previous
        relations = before
        catalog_statements, catalog_seconds = check.statement_count, check.seconds
    else:
        log.info(f"Reading the catalog of connection `{target.settings.name}`: {check.reason}.")
        current = read_catalog(target.settings)
        relations = selected_relations(current, target.settings)
        catalog_statements = check.statement_count + current.statement_count
        catalog_seconds = round(check.seconds + current.read_seconds, 3)
    if target.versioned_state_key is not None:
        previous_statistics = load_instance_statistics(instance, target.versioned_state_key)
    elif target.snapshot_path is not None:
        previous_statistics = load_statistics(statistics_path(target.snapshot_path))
    else:
        previous_statistics = None
    previous_by_key = previous_statistics.by_key() if previous_statistics else {}
    watch = ChangeWatch.of(current.relations(), relations.keys())
    measured = read_statistics(
        target.settings,
        list(relations.values()),
        previous_by_key,
        exact_row_count_threshold=target.sync.exact_row_count_threshold,
        # Without a baseline every relation is new to us; with one, a new name is new data.
        created=[key for key in relations if key not in before] if previous_statistics else (),
        now=now,
        schemas_by_database=watch.schemas_by_database,
    )
    versions = with_view_versions(measured.versions, watch.view_deps)
    if measured.standby_databases:
        log.info(
            f"Connection `{target.settings.name}` reads a streaming standby ("
            + ", ".join(f"`{name}`" for name in sorted(measured.standby_databases))
            + "): its row counters do not count replayed rows, so a change is recognised by the replay "
            "position and every relation there counts as changed when the standby replayed anything."
        )
    # Oids tell renamed tables from dropped + created ones.
    diff = compare_catalogs(
        target,
        before,
        relations,
        previous_oids={key: stats.oid for key, stats in previous_by_key.items()},
        current_oids={key: stats.oid for key, stats in measured.statistics.items()},
        force=force,
    )

    statistics = dict(measured.statistics)
    view_versions = {
        key: versions[key] for key in relations if key in watch.view_deps and key in versions
    }
    changed_views = [
        key
        for key, version in view_versions.items()
        if previous_statistics is not None
        and (before_version := previous_statistics.view_version(key)) is not None
        and before_version != version
    ]
    # A version the change sensor already materialized is observed, not materialized again:
    # automation would otherwise run the downstream assets twice for one change.
    materialized = (
        materialized_versions(
            instance,
            [target.asset_keys[key] for key in [*measured.changed, *changed_views] if key in target.asset_keys],
        )
        if target.sync.emit_materializations
        else {}
    )
    data_events = 0
    for key, stats in measured.statistics.items():
        asset_key = target.asset_keys.get(key)
        if asset_key is None:
            continue  # not an asset in this code location (yet): reported after the next reload
        changed = key in measured.changed
        if changed or not stats.reported:
            version = measured.versions.get(key)
            yield data_event(
                asset_key,
                stats,
                data_changed=changed,
                materialize=target.sync.emit_materializations and materialized.get(asset_key) != version,
                data_version=version,
            )
            statistics[key] = copy(stats, reported=True)
            data_events += 1
        elif target.sync.unchanged_relations == "observation" or _health_moved(previous_by_key.get(key), stats):
            yield data_event(
                asset_key, stats, data_changed=False, materialize=False, data_version=measured.versions.get(key)
            )
            data_events += 1
    for key in changed_views:
        asset_key = target.asset_keys.get(key)
        if asset_key is None:
            continue
        version = view_versions[key]
        yield view_event(
            asset_key,
            version,
            changed_at=now,
            materialize=target.sync.emit_materializations and materialized.get(asset_key) != version,
        )
        data_events += 1

    check_events = (
        list(_schema_check_evaluations(target, instance, before, relations, diff))
        if target.sync.schema_checks
        else []
    )
    yield from check_events

    for old, new in diff.renamed.items():
        log.info(f"Relation `{'.'.join(old)}` was renamed to `{'.'.join(new)}`.")
    for key in diff.created:
        log.info(f"New relation `{'.'.join(key)}`: its asset appears at the next code location reload.")
    for key in diff.dropped:
        log.warning(f"Relation `{'.'.join(key)}` is gone: its asset goes away at the next code location reload.")
    # Without checks, the log and the run output are the only places the per-relation diff shows.
    schema_changes = (
        {".".join(key): change.describe().splitlines() for key, change in diff.changed.items()}
        if not target.sync.schema_checks
        else {}
    )
    for relation, changes in schema_changes.items():
        log.warning(f"Relation `{relation}` changed shape: {'; '.join(changes)}.")

    reloaded: str | None = None
    if target.versioned_state_key is not None:
        key = target.versioned_state_key
        storage = state_storage_of(instance, target.settings.name)
        statistics_record = PostgresSyncStatistics(
            connection_name=target.settings.name,
            captured_at=now,
            relations=list(statistics.values()),
            view_versions={view_version_key(key): version for key, version in view_versions.items()},
        )
        if check.unchanged:
            write_instance_statistics(instance, key, statistics_record)
            kept = f"statistics written to the instance; catalog unchanged, no new version of `{key}`"
        else:
            version = write_snapshot_version(storage, key, current)
            write_instance_statistics(instance, key, statistics_record)
            kept = f"version `{version}` of `{key}` written to the defs state storage; statistics to the instance"
            if diff.created or diff.dropped or diff.renamed or diff.changed:
                reloaded = reload_code_location(run, storage, target.settings.name)
        log.info(f"Sync of connection `{target.settings.name}`: {kept}.")
    elif target.snapshot_path is not None:
        rewrite = not check.unchanged or not target.snapshot_path.exists()
        if rewrite:
            write_snapshot(current, target.snapshot_path)
        write_statistics(
            PostgresSyncStatistics(
                connection_name=target.settings.name,
                captured_at=now,
                relations=list(statistics.values()),
                view_versions={view_version_key(key): version for key, version in view_versions.items()},
            ),
            statistics_path(target.snapshot_path),
        )
        kept = (
            f"snapshot and statistics written to `{target.snapshot_path}`"
            if rewrite
            else f"statistics written to `{target.snapshot_path}`, snapshot unchanged"
        )
    else:
        kept = f"nothing kept: {target.no_snapshot_path_reason}"
        log.warning(f"Sync of connection `{target.settings.name}`: {kept}.")

    yield Output(
        None,
        metadata={
            **diff.summary_metadata(),
            "relations": MetadataValue.int(len(relations)),
            "relations_with_changed_data": MetadataValue.int(len(measured.changed) + len(changed_views)),
            "relations_skipped": MetadataValue.json({".".join(k): why for k, why in measured.skipped.items()}),
            "data_events": MetadataValue.int(data_events),
            "schema_check_events": MetadataValue.int(len(check_events)),
            **({"schema_changes": MetadataValue.json(schema_changes)} if schema_changes else {}),
            "statements": MetadataValue.int(catalog_statements + measured.statement_count),
            "seconds": MetadataValue.float(round(time.perf_counter() - started, 3)),
            "catalog_unchanged": MetadataValue.bool(check.unchanged),
            "standby": MetadataValue.bool(bool(measured.standby_databases)),
            "catalog_read_seconds": MetadataValue.float(catalog_seconds),
            "state": MetadataValue.text(kept),
            **({"code_location_reload": MetadataValue.text(reloaded)} if reloaded else {}),
        },
    )


def _health_moved(before: PostgresRelationStatistics | None, after: PostgresRelationStatistics) -> bool:
    """Vacuumed, analyzed, or became used or unused since the previous sync (`health.py`)."""
    return before is not None and health_moved(before.health, after.health)


def _schema_check_evaluations(
    target: PostgresSyncTarget,
    instance: DagsterInstance,
    before: Mapping[RelationKey, PostgresRelation],
    after: Mapping[RelationKey, PostgresRelation],
    diff: CatalogDiff,
) -> Iterator[AssetCheckEvaluation]:
    """A failing result for each relation that changed shape or vanished; a passing one only
    where the latest recorded result was not already a pass (keeps the event log small)."""
    outcomes = {
        key: schema_check_outcome(
            before.get(key),
            after.get(key),
            renamed_to=".".join(diff.renamed[key]) if key in diff.renamed else None,
        )
        for key in target.asset_keys
    }
    passing = [target.asset_keys[key] for key, outcome in outcomes.items() if outcome.passed]
    already_passing = latest_passing_checks(instance, passing)
    for key, outcome in outcomes.items():
        asset_key = target.asset_keys[key]
        if outcome.passed and asset_key in already_passing:
            continue
        yield outcome.to_evaluation(asset_key, target.severity)


def materialized_versions(instance: DagsterInstance, asset_keys: Sequence[AssetKey]) -> dict[AssetKey, str]:
    """The data version of each asset's latest materialization (when it has one), batched."""
    versions: dict[AssetKey, str] = {}
    for start in range(0, len(asset_keys), _CHECK_STATUS_BATCH):
        for record in instance.get_asset_records(asset_keys[start : start + _CHECK_STATUS_BATCH]):
            entry = record.asset_entry.last_materialization
            materialization = entry.asset_materialization if entry is not None else None
            version = (materialization.tags or {}).get(DATA_VERSION_TAG) if materialization is not None else None
            if version is not None:
                versions[record.asset_entry.asset_key] = version
    return versions


def latest_passing_checks(instance: DagsterInstance, asset_keys: Sequence[AssetKey]) -> set[AssetKey]:
    """Assets whose latest `schema_unchanged` execution succeeded, in a few batched queries."""
    passing: set[AssetKey] = set()
    check_keys = [AssetCheckKey(asset_key, SCHEMA_CHECK_NAME) for asset_key in asset_keys]
    for start in range(0, len(check_keys), _CHECK_STATUS_BATCH):
        records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            check_keys[start : start + _CHECK_STATUS_BATCH]
        )
        passing.update(
            key.asset_key
            for key, record in records.items()
            if record.status == AssetCheckExecutionRecordStatus.SUCCEEDED
        )
    return passing
