"""The Dagster side of keeping a connection alive: the sync job, its schedule, the
`schema_unchanged` checks and (opt-in) the profile job.

Why a plain op job and not an asset job over the checks: an asset job plans every selected
check, so each run would write three events per asset (planned, output, evaluation) even when
nothing changed. The sync op instead reports only what moved: observations of changed data and
check evaluations whose verdict changed. The checks are still declared (in small multi-check
ops, see `CHECKS_PER_OP`), so they show on every asset and can be executed from the UI, which
compares the live catalog with the last snapshot without writing anything.
"""

from collections.abc import Iterator, Mapping
from dataclasses import replace

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    Config,
    DagsterInstance,
    DefaultScheduleStatus,
    Definitions,
    JobDefinition,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    ScheduleDefinition,
    job,
    op,
)
from dagster_shared.check import CheckError
from pydantic import Field

from dagster_postgres_connection.catalog.models import PostgresRelation, RelationKey
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.observe.change_sensor import build_change_sensor
from dagster_postgres_connection.observe.config import PostgresProfilingSettings
from dagster_postgres_connection.observe.events import SCHEMA_CHECK_NAME, schema_check_outcome
from dagster_postgres_connection.observe.failures import reported_as_failure
from dagster_postgres_connection.observe.profiling import build_profile_definitions
from dagster_postgres_connection.observe.schema_changes import diff_catalogs
from dagster_postgres_connection.observe.sync import (
    PostgresSyncTarget,
    run_sync,
    selected_relations,
    sync_job_name,
    sync_op_name,
)


class PostgresSyncConfig(Config):
    """Run config of the sync op: `ops: {<name>_sync_op: {config: {force: true}}}`."""

    force: bool = Field(
        default=False,
        description="Replace the snapshot even when more than `mass_disappearance_threshold` of the relations vanished.",
    )


def build_sync_job(target: PostgresSyncTarget, metadata: Mapping[str, MetadataValue] | None = None) -> JobDefinition:
    """The sync job; `metadata` describes the connection (e.g. its routines, `metadata.routine_listing`)."""
    name = target.settings.name

    @op(
        name=sync_op_name(name),
        out=Out(Nothing, description="Run-level summary: relations created/dropped/renamed, counts, seconds."),
        description=f"Re-reads the catalog of connection `{name}`, reports changed relations and schema checks, and refreshes its snapshot.",
        tags={"dagster/kind/postgres": ""},
    )
    def _sync(context: OpExecutionContext, config: PostgresSyncConfig) -> Iterator[object]:
        with reported_as_failure():
            yield from run_sync(
                _assets_of_this_location(target, context), instance=context.instance, force=config.force, run=context.dagster_run
            )

    @job(
        name=sync_job_name(name),
        description=(
            f"Sync of Postgres connection `{name}`: row counts, sizes and last-update times of the "
            f"relations whose data changed, "
            f"{'`schema_unchanged` checks' if target.sync.schema_checks else 'logged schema changes'}, "
            f"and a refreshed catalog snapshot "
            f"(new and removed relations show after the next code location reload)."
        ),
        tags={"dagster/kind/postgres": ""},
        metadata=dict(metadata or {}),
    )
    def _job() -> None:
        _sync()

    return _job


def _assets_of_this_location(target: PostgresSyncTarget, context: OpExecutionContext) -> PostgresSyncTarget:
    """`target` without the relations that are no asset of the run's code location.

    `link_to_existing_assets` hands a relation that another asset builds (a dbt model) to that
    asset, which reports it: an event under our key would make an asset with no definition.
    A run launched from a code location knows its repository; a job executed in process outside
    one (`execute_in_process`) does not, and reports every relation.
    """
    try:
        defined = context.repository_def.assets_defs_by_key
    except CheckError:  # "No repository definition was set on the step context"
        return target
    if all(asset_key in defined for asset_key in target.asset_keys.values()):
        return target
    return replace(target, asset_keys={key: ak for key, ak in target.asset_keys.items() if ak in defined})


# Checks per multi-check op. Dagster's component loading (`load_from_defs_folder`) rebuilds
# every checks definition as a plain AssetsDefinition, and the repository then converts it back
# once per check key, so one op with N checks cost N conversions of N checks: quadratic (3,325
# checks: 64 s). With ops of K checks it is N conversions of K checks, while each op costs
# about 0.4 ms to build: K = 16 measured fastest at 3k and 10k assets (8 and 32 were no better).
CHECKS_PER_OP = 16
# One `Out` for every check output (it is immutable): building 11k of them was a third of the
# checks' build time.
_CHECK_OUT = Out(None, is_required=False)


def build_schema_checks(target: PostgresSyncTarget) -> list[AssetChecksDefinition]:
    """One `schema_unchanged` check per asset, in ops of `CHECKS_PER_OP` checks.

    Built like `@multi_asset_check` builds it, with two differences. Output names are our own
    (`check_<i>`): the decorator derives them from the asset key, and a relation named e.g.
    `Order$Tmp` is a valid asset key but not a valid op output name. And the ops have no
    inputs: the checks read Postgres, not the assets' values, and 10,000 `Nothing` inputs made
    building and validating the code location about five times slower.

    Empty without assets, and with `schema_checks: false`.
    """
    if not target.sync.schema_checks:
        return []
    items = list(target.asset_keys.items())
    return [
        _schema_checks_op(target, index // CHECKS_PER_OP, dict(items[index : index + CHECKS_PER_OP]))
        for index in range(0, len(items), CHECKS_PER_OP)
    ]


def _schema_checks_op(
    target: PostgresSyncTarget, number: int, asset_keys: Mapping[RelationKey, AssetKey]
) -> AssetChecksDefinition:
    output_specs = {
        f"check_{index}": AssetCheckSpec(
            SCHEMA_CHECK_NAME,
            asset=asset_key,
            description="Fails when the relation's columns, types, nullability, keys or comments changed, or it vanished, since the previous sync.",
        )
        for index, asset_key in enumerate(asset_keys.values())
    }

    @op(
        name=f"{target.settings.name}_schema_unchanged_{number}",
        out=dict.fromkeys(output_specs, _CHECK_OUT),
        description="Compares the live catalog with the last snapshot; writes nothing (the sync job does).",
        tags={"dagster/kind/postgres": ""},
    )
    def _checks(context: OpExecutionContext) -> Iterator[AssetCheckResult]:
        selected = context.selected_asset_check_keys
        with reported_as_failure():
            before, after = _catalogs_to_compare(target, context.run_id, context.instance)
        diff = diff_catalogs(before, after)
        for key, asset_key in asset_keys.items():
            if AssetCheckKey(asset_key, SCHEMA_CHECK_NAME) not in selected:
                continue
            renamed = ".".join(diff.renamed[key]) if key in diff.renamed else None
            outcome = schema_check_outcome(before.get(key), after.get(key), renamed_to=renamed)
            yield outcome.to_result(asset_key, target.severity)

    return AssetChecksDefinition.create(
        keys_by_input_name={},
        node_def=_checks,
        check_specs_by_output_name=output_specs,
        can_subset=True,
    )


_CatalogPair = tuple[Mapping[RelationKey, PostgresRelation], Mapping[RelationKey, PostgresRelation]]
_catalogs_by_run: dict[str, _CatalogPair] = {}


def _catalogs_to_compare(target: PostgresSyncTarget, run_id: str, instance: DagsterInstance) -> _CatalogPair:
    """The last snapshot and the live catalog, read once per run and process: a run that
    executes several check ops in one process (in-process executor) reads Postgres once."""
    if run_id not in _catalogs_by_run:
        _catalogs_by_run.clear()  # one run's catalogs at a time
        _catalogs_by_run[run_id] = (
            selected_relations(target.previous_snapshot(instance), target.settings),
            selected_relations(read_catalog(target.settings), target.settings),
        )
    return _catalogs_by_run[run_id]


def build_observe_definitions(
    target: PostgresSyncTarget,
    profiling: PostgresProfilingSettings | None = None,
    job_metadata: Mapping[str, MetadataValue] | None = None,
) -> Definitions:
    """The sync job (always, with `job_metadata`), its schedule (with `sync_schedule`), the
    change sensor (with `change_sensor`), the schema checks, and the profile job (only with
    `profiling`)."""
    sync_job = build_sync_job(target, job_metadata)
    schedules: list[ScheduleDefinition] = []
    if target.sync.sync_schedule:
        schedules.append(
            ScheduleDefinition(
                name=f"{sync_job.name}_schedule",
                job=sync_job,
                cron_schedule=target.sync.sync_schedule,
                execution_timezone=target.sync.timezone,
                # Writing `sync_schedule` in the configuration is the request to run it.
                default_status=DefaultScheduleStatus.RUNNING,
                description=f"Syncs connection `{target.settings.name}` on `{target.sync.sync_schedule}` ({target.sync.timezone}).",
            )
        )
    sensors = [build_change_sensor(target, target.sync.change_sensor)] if target.sync.change_sensor else []
    definitions = Definitions(
        jobs=[sync_job], schedules=schedules, sensors=sensors, asset_checks=build_schema_checks(target)
    )
    if profiling is None:
        return definitions
    return Definitions.merge(definitions, build_profile_definitions(target, profiling))

